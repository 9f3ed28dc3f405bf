"""The dashboard's one style sheet, inlined in every page (no file to fetch, no font to load)."""

CSS = """

:root{--fg:#1d2430;--muted:#5b6573;--line:#d7dce3;--bg:#f6f7f9;--card:#fff;--accent:#2457c5;--bad:#b3261e;--warn:#9a6700;--good:#1a7f37}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:center;gap:24px;padding:10px 20px;background:#14213d;color:#fff}
header h1{font-size:16px;margin:0}nav a{color:#dfe6f5;text-decoration:none;margin-right:14px;padding:4px 0}
nav a.here{color:#fff;border-bottom:2px solid #fff}header form:first-of-type{margin-left:auto}
header label{font-size:13px}
main{padding:16px 20px;max-width:1400px}section.page{margin-bottom:32px}h2{font-size:20px;margin:8px 0 12px}
h3{font-size:15px;margin:18px 0 8px}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:12px 14px;margin-bottom:14px}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:14px}
.tile{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:140px}
.tile .label{color:var(--muted);font-size:12px}.tile .value{font-size:20px;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:14px}.scroll{overflow-x:auto}
table{border-collapse:collapse;background:var(--card);font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;white-space:nowrap;vertical-align:top}
th{color:var(--muted);font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;background:#e8ecf3}
.badge.critical,.badge.stopped{background:#fbe3e1;color:var(--bad)}
.badge.warning{background:#fff1cc;color:var(--warn)}.badge.running{background:#dff3e4;color:var(--good)}
.decision{font-weight:600}.muted,.empty{color:var(--muted)}
figure.chart{max-width:760px;margin:0;background:var(--card);border:1px solid var(--line);border-radius:6px;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}svg{width:100%;height:auto;display:block}
svg text{font-size:11px;fill:var(--muted)}svg .axis{stroke:var(--line)}svg path{fill:none;stroke-width:2}
.legend{list-style:none;margin:4px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:10px;font-size:12px}
.legend li:before{content:"";display:inline-block;width:10px;height:10px;margin-right:4px;background:currentColor}
.s0{stroke:#2457c5;fill:#2457c5;color:#2457c5}.s1{stroke:#d1495b;fill:#d1495b;color:#d1495b}
.s2{stroke:#2a9d8f;fill:#2a9d8f;color:#2a9d8f}.s3{stroke:#e09f3e;fill:#e09f3e;color:#e09f3e}
.s4{stroke:#7b2cbf;fill:#7b2cbf;color:#7b2cbf}.s5{stroke:#5c677d;fill:#5c677d;color:#5c677d}
.s6{stroke:#8ac926;fill:#8ac926;color:#8ac926}.s7{stroke:#ff595e;fill:#ff595e;color:#ff595e}
dl.flat{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:0}
dl.flat dt{color:var(--muted)}dl.flat dd{margin:0;font-variant-numeric:tabular-nums}
form.sign-in{max-width:420px;margin:60px auto}
form.sign-in input{width:100%;padding:8px;margin:8px 0 12px;font:inherit}
button{font:inherit;padding:6px 14px;border:1px solid var(--line);border-radius:4px;background:#fff;cursor:pointer}
.error{color:var(--bad)}
"""
