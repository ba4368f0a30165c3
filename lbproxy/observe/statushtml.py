# -*- test-case-name: tests.test_statuspage -*-
"""
The status page's HTML, style and script in one document: no build step,
no external asset, readable on a phone (targets are cards that wrap).
The script draws the frame embedded in the page, then each frame of the
C{events} stream (L{lbproxy.observe.statuspage}).  Every text from the
proxy goes in through C{textContent}, never as markup.

Each target's card carries C{data-target} (its address) and
C{data-state} (up, down, draining, slow_start, ejected) for tests and
scripts.
"""

from __future__ import annotations

import json
from typing import Any, Dict

__all__ = ["render_page"]

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lbproxy status</title>
<style>
:root { --up: #1a7f37; --down: #cf222e; --warn: #9a6700; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #1f2328; background: #f6f8fa; }
header { display: flex; flex-wrap: wrap; gap: .5em 1em; align-items: baseline;
  padding: .8em 1em; background: #24292f; color: #fff; }
header h1 { font-size: 1.15em; margin: 0; }
#live { font-size: .85em; padding: .1em .6em; border-radius: 1em; background: var(--up); }
#live.off { background: var(--down); }
#clock { font-size: .85em; color: #d0d7de; margin-left: auto; }
main { padding: 1em; max-width: 1200px; margin: 0 auto; }
section { margin-bottom: 1.2em; }
h2 { font-size: 1.05em; margin: .2em 0 .5em; }
h2 small { font-weight: normal; color: var(--muted); }
.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: .5em; }
.fact, .card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .6em .8em; }
.fact b { display: block; font-size: .8em; color: var(--muted); font-weight: 600; }
.fact span { word-break: break-all; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: .9em; }
td, th { border: 1px solid var(--line); padding: .3em .5em; text-align: left; }
.scroll { overflow-x: auto; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(270px, 1fr)); gap: .6em; }
.card { border-left: 6px solid var(--up); }
.card[data-state="down"], .card[data-state="ejected"] { border-left-color: var(--down); }
.card[data-state="draining"], .card[data-state="slow_start"] { border-left-color: var(--warn); }
.card h3 { font-size: 1em; margin: 0 0 .3em; display: flex; justify-content: space-between;
  gap: .5em; word-break: break-all; }
.state { font-size: .8em; font-weight: 700; text-transform: uppercase; padding: .05em .5em;
  border-radius: 1em; color: #fff; background: var(--up); white-space: nowrap; }
.state.down, .state.ejected { background: var(--down); }
.state.draining, .state.slow_start { background: var(--warn); }
.stats { display: grid; grid-template-columns: repeat(3, 1fr); gap: .3em .6em; margin: .3em 0; }
.stats b { display: block; font-size: .75em; color: var(--muted); font-weight: 600; }
.stats span { font-variant-numeric: tabular-nums; }
.change { font-size: .85em; color: var(--muted); margin: .3em 0; }
svg { width: 100%; height: 36px; display: block; background: #f6f8fa; border-radius: 3px; }
.legend { font-size: .75em; color: var(--muted); }
.legend i { display: inline-block; width: .8em; height: .25em; vertical-align: middle; }
</style>
</head>
<body>
<header><h1>lbproxy status</h1><span id="live">live</span><span id="clock"></span></header>
<main>
<section><div class="facts" id="facts"></div></section>
<section id="pools"></section>
<section><h2>Routes</h2><div class="scroll"><table id="routes"></table></div></section>
</main>
<script id="initial" type="application/json">__FRAME__</script>
<script>
"use strict";
function el(tag, attrs, text) {
  var node = document.createElement(tag);
  for (var name in (attrs || {})) node.setAttribute(name, attrs[name]);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
function ago(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  if (seconds < 60) return Math.round(seconds) + " s ago";
  if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
  return Math.round(seconds / 3600) + " h ago";
}
function num(value, unit) { return value === null || value === undefined ? "-" : value + (unit || ""); }
function fact(label, value) {
  var box = el("div", {"class": "fact"});
  box.appendChild(el("b", null, label));
  box.appendChild(el("span", null, value));
  return box;
}
function spark(requests, errors) {
  var ns = "http://www.w3.org/2000/svg", width = 180, height = 36;
  var svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  svg.setAttribute("preserveAspectRatio", "none");
  var top = Math.max(1, Math.max.apply(null, requests.concat([1])));
  [[requests, "#0969da"], [errors, "#cf222e"]].forEach(function (pair) {
    var values = pair[0], points = [];
    // One step per second, right-aligned; wider steps while history is short.
    var step = width / Math.max(30, values.length - 1);
    values.forEach(function (v, i) {
      points.push((width - (values.length - 1 - i) * step).toFixed(1) + "," +
                  (height - 2 - (height - 4) * v / top).toFixed(1));
    });
    if (points.length < 2) return;
    var line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", pair[1]);
    line.setAttribute("stroke-width", "1.5");
    svg.appendChild(line);
  });
  return svg;
}
function card(target, now) {
  var box = el("div", {"class": "card", "data-target": target.address, "data-state": target.state});
  var title = el("h3");
  title.appendChild(el("span", null, target.address));
  title.appendChild(el("span", {"class": "state " + target.state}, target.state.replace("_", " ")));
  box.appendChild(title);
  var stats = el("div", {"class": "stats"});
  [["weight", target.weight + " (" + target.effective_weight + ")"],
   ["in flight", target.inflight],
   ["req/s", num(target.rps)],
   ["errors", target.error_rate === undefined ? "-" : (target.error_rate * 100).toFixed(1) + " %"],
   ["p50", num(target.p50_ms, " ms")],
   ["p99", num(target.p99_ms, " ms")]].forEach(function (pair) {
    var stat = el("div");
    stat.appendChild(el("b", null, pair[0]));
    stat.appendChild(el("span", null, pair[1]));
    stats.appendChild(stat);
  });
  box.appendChild(stats);
  var change = target.last_change === null ? "no change yet" :
    "changed " + ago(now - target.last_change) + (target.last_reason ? ": " + target.last_reason : "");
  box.appendChild(el("div", {"class": "change"}, change));
  box.appendChild(spark(target.spark_requests || [], target.spark_errors || []));
  var legend = el("div", {"class": "legend"});
  legend.innerHTML = '<i style="background:#0969da"></i> requests/s &nbsp; <i style="background:#cf222e"></i> errors/s, last 3 min';
  box.appendChild(legend);
  return box;
}
function render(frame) {
  var now = frame.time, config = frame.config || {};
  document.getElementById("clock").textContent = new Date(now * 1000).toLocaleTimeString();
  var facts = document.getElementById("facts");
  facts.replaceChildren(
    fact("configuration", config.path),
    fact("checksum", (config.checksum || "-").slice(0, 16)),
    fact("loaded", config.loaded_at ? new Date(config.loaded_at * 1000).toLocaleString() +
         " (" + ago(now - config.loaded_at) + ")" : "-"),
    fact("reloads", (config.reloads || 0) + (config.last_reload ?
         (config.last_reload.applied ? ", last applied" : ", last refused: " + (config.last_reload.reason || "")) : "")),
    fact("listeners", (frame.listeners || []).join(", ") || "-"));
  var pools = document.getElementById("pools");
  pools.replaceChildren();
  Object.keys(frame.pools).forEach(function (name) {
    var pool = frame.pools[name];
    var up = pool.targets.filter(function (t) { return t.state === "up" || t.state === "slow_start"; }).length;
    var heading = el("h2", null, "pool " + name + " ");
    heading.appendChild(el("small", null, pool.balance + ", " + up + " of " + pool.targets.length + " up"));
    var cards = el("div", {"class": "cards"});
    pool.targets.forEach(function (t) { cards.appendChild(card(t, now)); });
    var section = el("section", {"data-pool": name});
    section.appendChild(heading);
    section.appendChild(cards);
    pools.appendChild(section);
  });
  var routes = document.getElementById("routes");
  routes.replaceChildren();
  var head = el("tr");
  ["#", "host", "path", "pool"].forEach(function (h) { head.appendChild(el("th", null, h)); });
  routes.appendChild(head);
  (frame.routes || []).forEach(function (route, index) {
    var row = el("tr");
    [index, route.host || "*", route.path, route.pool].forEach(function (v) { row.appendChild(el("td", null, v)); });
    routes.appendChild(row);
  });
  document.body.setAttribute("data-frame-time", String(now));
}
render(JSON.parse(document.getElementById("initial").textContent));
var live = document.getElementById("live");
var events = new EventSource("events");
events.onmessage = function (message) {
  live.textContent = "live"; live.className = "";
  render(JSON.parse(message.data));
};
events.onerror = function () { live.textContent = "disconnected"; live.className = "off"; };
</script>
</body>
</html>
"""


def render_page(frame: Dict[str, Any]) -> bytes:
    """
    The page with C{frame} embedded (escaped so that no text in it can
    end the script element).
    """
    data = json.dumps(frame, separators=(",", ":"))
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return _PAGE.replace("__FRAME__", data).encode("utf-8")
