-- A database made by the store's code before Alembic (commit c863e49: migrations recorded in schema_version,
-- at version 3) on SQLite, dumped with sqlite3's iterdump.
CREATE TABLE api_keys (
	key_id VARCHAR(32) NOT NULL, 
	key_hash VARCHAR(128) NOT NULL, 
	scopes VARCHAR(200) NOT NULL, 
	created_at FLOAT NOT NULL, 
	revoked BOOLEAN NOT NULL, 
	PRIMARY KEY (key_id)
);
CREATE TABLE audit_log (
	id INTEGER NOT NULL, 
	action VARCHAR(40) NOT NULL, 
	subject VARCHAR(128) NOT NULL, 
	detail JSON NOT NULL, 
	at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "audit_log" VALUES(1,'erase_user','7877fcc8168766217268c803a384f864b23dfc83672940c24bc9609759ba511e','{"events": 1, "users": 0, "exposures": 0}',1.79662998677091288561e+09);
CREATE TABLE batch_recommendations (
	batch_id VARCHAR(64) NOT NULL, 
	user_id VARCHAR(200) NOT NULL, 
	item_id VARCHAR(200) NOT NULL, 
	score FLOAT NOT NULL, 
	rank INTEGER NOT NULL, 
	created_at FLOAT NOT NULL
);
INSERT INTO "batch_recommendations" VALUES('b1','bob','i1',0.5,1,1.79662998674537038802e+09);
CREATE TABLE erasures (
	subject VARCHAR(128) NOT NULL, 
	erased_at FLOAT NOT NULL, 
	PRIMARY KEY (subject)
);
INSERT INTO "erasures" VALUES('7877fcc8168766217268c803a384f864b23dfc83672940c24bc9609759ba511e',1.79662998677051472667e+09);
CREATE TABLE events (
	id INTEGER NOT NULL, 
	event_id VARCHAR(200) NOT NULL, 
	user_id VARCHAR(200) NOT NULL, 
	item_id VARCHAR(200) NOT NULL, 
	type VARCHAR(40) NOT NULL, 
	value FLOAT, 
	timestamp FLOAT NOT NULL, 
	received_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (event_id)
);
INSERT INTO "events" VALUES(1,'e1','alice','i1','view',1.0,1700000000.0,1.7966299866889820099e+09);
INSERT INTO "events" VALUES(2,'e2','bob','i2','purchase',2.0,1700000100.0,1.7966299866889820099e+09);
CREATE TABLE exposures (
	exposure_id VARCHAR(64) NOT NULL, 
	user_id VARCHAR(200) NOT NULL, 
	model_version VARCHAR(200) NOT NULL, 
	items JSON NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (exposure_id)
);
INSERT INTO "exposures" VALUES('f08b2db77f5e4523a9f4e2feb18c9290','alice','v1','["i1", "i2"]',1.79662998672790026662e+09);
CREATE TABLE items (
	item_id VARCHAR(200) NOT NULL, 
	attributes JSON NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (item_id)
);
INSERT INTO "items" VALUES('i1','{"genre": "drama"}',1.79662998672433686254e+09);
CREATE TABLE schema_version (
	version INTEGER NOT NULL
);
INSERT INTO "schema_version" VALUES(1);
INSERT INTO "schema_version" VALUES(2);
INSERT INTO "schema_version" VALUES(3);
CREATE TABLE store_settings (
	name VARCHAR(64) NOT NULL, 
	value VARCHAR(200) NOT NULL, 
	PRIMARY KEY (name)
);
INSERT INTO "store_settings" VALUES('audit_secret','0777a03e20a4190130b9877f0cd424fc88335a8a1daee331feedf8d738c1c580');
INSERT INTO "store_settings" VALUES('pseudonym_check','');
CREATE TABLE users (
	user_id VARCHAR(200) NOT NULL, 
	attributes JSON NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (user_id)
);
INSERT INTO "users" VALUES('alice','{"age": 30}',1.79662998671018385886e+09);
CREATE INDEX ix_events_user_id ON events (user_id);
CREATE INDEX ix_exposures_user_id ON exposures (user_id);
CREATE INDEX ix_batch_recommendations_batch_id ON batch_recommendations (batch_id);
CREATE INDEX ix_erasures_erased_at on erasures (erased_at);
