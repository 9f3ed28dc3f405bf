-- A database made by the store's code before Alembic (commit c863e49: migrations recorded in schema_version,
-- at version 3) on PostgreSQL, dumped with pg_dump --inserts; session settings removed.

CREATE TABLE public.api_keys (
    key_id character varying(32) NOT NULL,
    key_hash character varying(128) NOT NULL,
    scopes character varying(200) NOT NULL,
    created_at double precision NOT NULL,
    revoked boolean NOT NULL
);

CREATE TABLE public.audit_log (
    id integer NOT NULL,
    action character varying(40) NOT NULL,
    subject character varying(128) NOT NULL,
    detail json NOT NULL,
    at double precision NOT NULL
);

CREATE SEQUENCE public.audit_log_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.audit_log_id_seq OWNED BY public.audit_log.id;

CREATE TABLE public.batch_recommendations (
    batch_id character varying(64) NOT NULL,
    user_id character varying(200) NOT NULL,
    item_id character varying(200) NOT NULL,
    score double precision NOT NULL,
    rank integer NOT NULL,
    created_at double precision NOT NULL
);

CREATE TABLE public.erasures (
    subject character varying(128) NOT NULL,
    erased_at double precision NOT NULL
);

CREATE TABLE public.events (
    id integer NOT NULL,
    event_id character varying(200) NOT NULL,
    user_id character varying(200) NOT NULL,
    item_id character varying(200) NOT NULL,
    type character varying(40) NOT NULL,
    value double precision,
    "timestamp" double precision NOT NULL,
    received_at double precision NOT NULL
);

CREATE SEQUENCE public.events_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.events_id_seq OWNED BY public.events.id;

CREATE TABLE public.exposures (
    exposure_id character varying(64) NOT NULL,
    user_id character varying(200) NOT NULL,
    model_version character varying(200) NOT NULL,
    items json NOT NULL,
    created_at double precision NOT NULL
);

CREATE TABLE public.items (
    item_id character varying(200) NOT NULL,
    attributes json NOT NULL,
    updated_at double precision NOT NULL
);

CREATE TABLE public.schema_version (
    version integer NOT NULL
);

CREATE TABLE public.store_settings (
    name character varying(64) NOT NULL,
    value character varying(200) NOT NULL
);

CREATE TABLE public.users (
    user_id character varying(200) NOT NULL,
    attributes json NOT NULL,
    updated_at double precision NOT NULL
);

ALTER TABLE ONLY public.audit_log ALTER COLUMN id SET DEFAULT nextval('public.audit_log_id_seq'::regclass);

ALTER TABLE ONLY public.events ALTER COLUMN id SET DEFAULT nextval('public.events_id_seq'::regclass);

INSERT INTO public.audit_log VALUES (1, 'erase_user', '26de3ed72288ef155434ac1fb1557c30172bb7d1b6fff6c36595250f6f888472', '{"events": 1, "users": 0, "exposures": 0}', 1796630008.1322284);

INSERT INTO public.batch_recommendations VALUES ('b1', 'bob', 'i1', 0.5, 1, 1796630008.055078);

INSERT INTO public.erasures VALUES ('26de3ed72288ef155434ac1fb1557c30172bb7d1b6fff6c36595250f6f888472', 1796630008.1297638);

INSERT INTO public.events VALUES (1, 'e1', 'alice', 'i1', 'view', 1, 1700000000, 1796630007.9327772);
INSERT INTO public.events VALUES (2, 'e2', 'bob', 'i2', 'purchase', 2, 1700000100, 1796630007.9327772);

INSERT INTO public.exposures VALUES ('6ff3ea4238ef4acdb16e82356118d1b0', 'alice', 'v1', '["i1", "i2"]', 1796630007.996264);

INSERT INTO public.items VALUES ('i1', '{"genre": "drama"}', 1796630007.9843626);

INSERT INTO public.schema_version VALUES (1);
INSERT INTO public.schema_version VALUES (2);
INSERT INTO public.schema_version VALUES (3);

INSERT INTO public.store_settings VALUES ('audit_secret', '4e894623b142e7d8fb60a75ffa59a05f54e5149522a7298370a85d25a22b81f1');
INSERT INTO public.store_settings VALUES ('pseudonym_check', '');

INSERT INTO public.users VALUES ('alice', '{"age": 30}', 1796630007.9684887);

SELECT pg_catalog.setval('public.audit_log_id_seq', 1, true);

SELECT pg_catalog.setval('public.events_id_seq', 3, true);

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (key_id);

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.erasures
    ADD CONSTRAINT erasures_pkey PRIMARY KEY (subject);

ALTER TABLE ONLY public.events
    ADD CONSTRAINT events_event_id_key UNIQUE (event_id);

ALTER TABLE ONLY public.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.exposures
    ADD CONSTRAINT exposures_pkey PRIMARY KEY (exposure_id);

ALTER TABLE ONLY public.items
    ADD CONSTRAINT items_pkey PRIMARY KEY (item_id);

ALTER TABLE ONLY public.store_settings
    ADD CONSTRAINT store_settings_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (user_id);

CREATE INDEX ix_batch_recommendations_batch_id ON public.batch_recommendations USING btree (batch_id);

CREATE INDEX ix_erasures_erased_at ON public.erasures USING btree (erased_at);

CREATE INDEX ix_events_user_id ON public.events USING btree (user_id);

CREATE INDEX ix_exposures_user_id ON public.exposures USING btree (user_id);

