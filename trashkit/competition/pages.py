"""The server's pages: tornado templates, plain HTML that works without JavaScript.

Every ``{{ ... }}`` is escaped by tornado (``xhtml_escape``), so a team called
``<script>...`` shows as text on every page. A page waiting for a job refreshes itself with a
``<meta http-equiv="refresh">`` (no script). Templates live here as strings so the package
needs no data files.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from tornado.template import DictLoader

BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ heading }} - {{ rules.title }}</title>
{% if refresh %}<meta http-equiv="refresh" content="{{ refresh }}">{% end %}
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;color:#222}
nav a{margin-right:1rem} table{border-collapse:collapse;margin:1rem 0}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left} th{background:#f3f3f3}
.note{color:#555} .error{color:#a00;font-weight:bold} .ok{color:#060;font-weight:bold}
code{background:#f3f3f3;padding:0 .2rem}
</style></head><body>
<nav><a href="/">Home</a><a href="/leaderboard">Leaderboard</a><a href="/team">Team</a>
<a href="/rules">Rules</a><a href="/admin">Admin</a></nav>
<h1>{{ heading }}</h1>
{% if message %}<p class="{{ message_class }}" id="message">{{ message }}</p>{% end %}
{% block body %}{% end %}
<p class="note">{{ rules.title }} &middot; edition: {{ rules.edition }} &middot;
closes {{ when(closes) }} &middot; {{ "closed" if closed else "open" }}</p>
</body></html>"""

BOARD = """<table id="{{ table_id }}"><tr><th>#</th><th>team</th><th>score</th><th>macro-F1</th>
<th>{{ "MACs" if rules.edition == "macs" else "ms / image" }}</th><th>submission</th>
{% if private %}<th>picks</th>{% else %}<th>entries</th>{% end %}</tr>
{% for r in rows %}<tr><td>{{ r["rank"] }}</td><td>{{ r["team"] }}</td>
<td>{{ num(r["score"], 4) }}</td><td>{{ num(r["f1"], 4) }}</td><td>{{ cost(r) }}</td>
<td>#{{ r["submission"] }}</td>
{% if private %}<td>{{ ", ".join("#%d" % i for i in r["picks"]) }}
{% if not r["picked_by_team"] %}(no picks made: best public){% end %}</td>
{% else %}<td>{{ r["entries"] }}</td>{% end %}</tr>{% end %}
</table>"""

INDEX = """{% extends "base.html" %}{% block body %}
<p>Submit a trashkit checkpoint (<code>best.pt</code>) or an ONNX file; the server runs it on
the hidden test images and scores it with the {{ rules.edition }} edition's formula (see the
<a href="/rules">rules</a>). Lower scores are better.</p>
<h2>Public leaderboard (top 10)</h2>
{% module Template("board.html", rows=rows[:10], private=False, table_id="top") %}
<p><a href="/leaderboard">Full leaderboard</a> &middot; <a href="/team">Your team</a></p>
{% end %}"""

LEADERBOARD = """{% extends "base.html" %}{% block body %}
{% if private_rows is not None %}<h2>Private leaderboard (final)</h2>
<p class="note">Ranked on each team's final picks by the private half of the test set
({{ rules.n_private }} images). A team that picked nothing is ranked on its best
{{ rules.final_picks }} submissions by public score.</p>
{% module Template("board.html", rows=private_rows, private=True, table_id="private") %}
{% else %}<p class="note">The private leaderboard is shown after the close.</p>{% end %}
<h2>Public leaderboard</h2>
<p class="note">Best public score of each team ({{ rules.n_public }} public images).</p>
{% module Template("board.html", rows=rows, private=False, table_id="public") %}
{% end %}"""

RULES = """{% extends "base.html" %}{% block body %}
<h2>Score ({{ rules.edition }} edition)</h2><p><code>{{ rules.formula }}</code></p>
<table>{% for k, v in sorted(rules.baselines.items()) %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>
{% end %}</table>
<p class="note">The baselines are trashkit's back-derived values (trashkit.scoring), set by the
lecturer for this competition.</p>
<h2>What to submit</h2><ul>
<li>A trashkit checkpoint (<code>.pt</code>) or an ONNX file (<code>.onnx</code>), at most
{{ rules.limits["upload_mb"] }} MiB.</li>
<li>Classes, in this order: {{ ", ".join(rules.classes) }}.</li>
<li>Input size: {% if rules.input_size %}exactly {{ rules.input_size }} px{% else %}your
checkpoint's own image_size, 32 to 512 px{% end %};
RGB, resized like trashkit's training (bilinear), normalised with ImageNet mean and std.</li>
<li>ONNX: one file (no external data), standard operators only (no custom domains, no Loop,
If or Scan), one input N x 3 x S x S, one output N x {{ len(rules.classes) }}.</li>
<li>At most {{ rules.daily_limit }} accepted submissions per UTC day (refused ones do not
count); {{ rules.final_picks }} final picks.</li>
<li>The server runs your model: one forward pass per image, on the hidden images only, with
a {{ rules.limits["run_timeout_s"] }} s time limit and {{ rules.limits["run_memory_mb"] }} MiB
memory limit{% if rules.edition == "time" %}; time is measured in ONNX Runtime on
{{ rules.limits["threads"] }} thread(s), batch 1, the same way for everyone{% end %}.</li>
</ul>
<p>Test set: {{ rules.n_public }} public images (scores shown now) and {{ rules.n_private }}
private images (shown after the close), split stratified by class with seed {{ rules.seed }}.</p>
{% end %}"""

LOGIN = """{% extends "base.html" %}{% block body %}
<form method="post" action="{{ action }}">{% module xsrf_form_html() %}
<label>{{ label }} <input type="password" name="token" id="token" size="60" required></label>
<button type="submit" id="login">Sign in</button></form>
{% end %}"""

TEAM = """{% extends "base.html" %}{% block body %}
<p>Team <strong id="team-name">{{ team["name"] }}</strong> &middot; submissions left today
(UTC): <strong id="quota">{{ quota_left }}</strong> of {{ rules.daily_limit }}
<span class="note">(refused uploads do not count)</span></p>
{% if not closed %}<h2>Submit</h2>
<form method="post" action="/submit" enctype="multipart/form-data">{% module xsrf_form_html() %}
<input type="file" name="model" id="model" accept=".pt,.pth,.onnx" required>
<button type="submit" id="submit">Submit</button></form>{% end %}
<h2>Your submissions</h2>
<form method="post" action="/picks">{% module xsrf_form_html() %}
<table id="history"><tr><th>pick</th><th>#</th><th>file</th><th>sent</th><th>state</th>
<th>public score</th><th>public F1</th>
<th>{{ "MACs" if rules.edition == "macs" else "ms / image" }}</th>
{% if private %}<th>private score</th><th>private F1</th>{% end %}<th>note</th></tr>
{% for r in rows %}<tr id="sub-{{ r["id"] }}">
<td>{% if r["state"] == "scored" %}<input type="checkbox" name="pick" value="{{ r["id"] }}"
{% if r["final_pick"] %}checked{% end %} {% if closed %}disabled{% end %}>{% end %}</td>
<td>{{ r["id"] }}</td><td>{{ r["filename"] }}</td><td>{{ when(r["created_at"]) }}</td>
<td class="state">{{ r["state"] }}</td><td>{{ num(r["public_score"], 4) }}</td>
<td>{{ num(r["public_f1"], 4) }}</td><td>{{ cost(r) }}</td>
{% if private %}<td>{{ num(r["private_score"], 4) }}</td>
<td>{{ num(r["private_f1"], 4) }}</td>{% end %}
<td>{{ r["message"] or "" }}</td></tr>{% end %}</table>
{% if not closed %}<button type="submit" id="save-picks">Save final picks (at most
{{ rules.final_picks }})</button>{% end %}</form>
<p class="note">Final picks: {{ picks_note }}</p>
<form method="post" action="/logout">{% module xsrf_form_html() %}<button>Sign out</button></form>
{% end %}"""

ADMIN = """{% extends "base.html" %}{% block body %}
<table id="counts"><tr><th>teams</th><td>{{ n_teams }}</td></tr>
{% for state, n in sorted(counts.items()) %}<tr><th>{{ state }}</th><td>{{ n }}</td></tr>{% end %}
</table>
<p>Private leaderboard: {% if private %}shown{% else %}hidden (private scores are stored
and shown only after the close or a reveal){% end %}.</p>
{% if not closed %}<form method="post" action="/admin/close">{% module xsrf_form_html() %}
<button id="close">Close the competition now</button></form>{% end %}
{% if not private %}<form method="post" action="/admin/reveal">{% module xsrf_form_html() %}
<button id="reveal">Reveal the private leaderboard</button></form>{% end %}
{% end %}"""

TEMPLATES = {
    "base.html": BASE,
    "board.html": BOARD,
    "index.html": INDEX,
    "leaderboard.html": LEADERBOARD,
    "rules.html": RULES,
    "login.html": LOGIN,
    "team.html": TEAM,
    "admin.html": ADMIN,
    "message.html": '{% extends "base.html" %}{% block body %}'
    '<p><a href="{{ back }}">Back</a></p>{% end %}',
}


def loader() -> DictLoader:
    """The templates, autoescaped (tornado's default ``xhtml_escape``)."""
    return DictLoader(TEMPLATES, autoescape="xhtml_escape")


def when(ts: float | None) -> str:
    """A timestamp as UTC text (one zone for everyone)."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def num(x: float | None, digits: int = 4) -> str:
    """A number for a table cell; blank when missing."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x:.{digits}f}"


def cost(row: dict, edition: str) -> str:
    """The cost column of an edition: MACs, or milliseconds per image."""
    key = "macs" if edition == "macs" else "seconds_per_image"
    if row.get(key) is None:
        return ""
    return f"{int(row['macs']):,}" if edition == "macs" else f"{1000 * row[key]:.3f}"


HELPERS = {"when": when, "num": num}
