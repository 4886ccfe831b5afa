// pineconed status page: polls /api/status (the admin API's read-only
// responses plus traffic rates) and redraws. Builds the DOM with
// textContent only, so nothing from the daemon is ever parsed as HTML.
"use strict";

const refreshMS = 2000;
let refreshes = 0;

const $ = (id) => document.getElementById(id);

function short(key) {
  return key ? key.slice(0, 16) + "…" : "-";
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
}

function rate(bps) {
  return bytes(bps) + "/s";
}

function duration(s) {
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + (s % 60) + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d" + Math.floor((s % 86400) / 3600) + "h";
}

function coords(c) {
  return "[" + (c || []).join(" ") + "]";
}

function setText(id, text) {
  $(id).textContent = text;
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function fillRows(id, items, row) {
  const body = $(id);
  const rows = items.map((it) => {
    const tr = document.createElement("tr");
    row(tr, it);
    return tr;
  });
  body.replaceChildren(...rows);
}

function renderSelf(self) {
  setText("version", self.version);
  setText("self-key", self.public_key);
  setText("self-address", self.address);
  setText("self-subnet", self.subnet);
  setText("self-uptime", duration(self.uptime_seconds));
  setText("self-tun", self.tun_name ? self.tun_name + ", MTU " + self.tun_mtu : "none (relay only)");
}

function renderPeers(peers, rates) {
  const byPort = new Map(rates.peers.map((r) => [r.port, r]));
  setText("peer-count", "(" + peers.length + ")");
  fillRows("peer-rows", peers, (tr, p) => {
    const r = byPort.get(p.port) || { in_bps: 0, out_bps: 0 };
    tr.dataset.peerKey = p.public_key;
    cell(tr, String(p.port), "num");
    cell(tr, short(p.public_key), "key").title = p.public_key;
    cell(tr, p.transport);
    cell(tr, p.inbound ? "in" : "out");
    cell(tr, p.uri);
    cell(tr, duration(p.uptime_seconds));
    cell(tr, rate(r.in_bps), "num rate-in").dataset.bps = String(r.in_bps);
    cell(tr, rate(r.out_bps), "num rate-out").dataset.bps = String(r.out_bps);
    cell(tr, bytes(p.bytes_in), "num");
    cell(tr, bytes(p.bytes_out), "num");
    cell(tr, String(Object.values(p.drops).reduce((a, b) => a + b, 0)), "num");
    cell(tr, coords(p.coords));
    const flags = [];
    if (p.is_parent) flags.push("parent");
    if (p.duplicate) flags.push("duplicate");
    cell(tr, flags.join(", ") || "-");
  });
}

function renderTree(tree) {
  setText("root-key", tree.root_key);
  setText("root-seq", String(tree.root_sequence));
  setText("tree-coords", coords(tree.coords) + (tree.parent_port === 0 ? " (this node is the root)" : ""));
  setText("tree-ancestors", tree.ancestors.length ? tree.ancestors.map(short).join(" → ") + " → this node" : "none");
  setText("tree-children", tree.children.length ? tree.children.map((c) => "port " + c.port + " " + short(c.public_key)).join(", ") : "none");
}

function renderSnake(snake) {
  const n = (x) => x ? x.public_key + " (port " + x.port + ")" : "none known";
  setText("snake-asc", n(snake.ascending));
  setText("snake-desc", n(snake.descending));
  setText("snake-entries", snake.entries.length + " entries");
}

function renderSessions(sessions) {
  setText("session-count", "(" + sessions.length + ")");
  fillRows("session-rows", sessions, (tr, s) => {
    cell(tr, short(s.remote_key), "key").title = s.remote_key;
    cell(tr, s.remote_address);
    cell(tr, s.state);
    cell(tr, duration(s.age_seconds));
    cell(tr, bytes(s.bytes_in), "num");
    cell(tr, bytes(s.bytes_out), "num");
    cell(tr, String(s.peer_mtu), "num");
  });
}

function renderDrops(drops) {
  const items = Object.entries(drops).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  if (items.length === 0) items.push(["none", 0]);
  fillRows("drop-rows", items, (tr, [reason, n]) => {
    cell(tr, reason);
    cell(tr, String(n), "num");
  });
}

// renderGraph draws overlay in and out rates as two polylines scaled to
// the largest value shown.
function renderGraph(history) {
  const svg = $("graph");
  const w = 600, h = 160, pad = 4;
  const peak = Math.max(0, ...history.map((p) => Math.max(p.overlay_in_bps, p.overlay_out_bps)));
  const max = Math.max(1, peak);
  const line = (field, cls) => {
    const el = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    const n = Math.max(1, history.length - 1);
    el.setAttribute("points", history.map((p, i) =>
      (i / n * w).toFixed(1) + "," + (h - pad - p[field] / max * (h - 2 * pad)).toFixed(1)).join(" "));
    el.setAttribute("class", cls);
    return el;
  };
  svg.replaceChildren(line("overlay_in_bps", "in"), line("overlay_out_bps", "out"));
  const span = history.length > 1 ? duration(Math.round((history[history.length - 1].unix_ms - history[0].unix_ms) / 1000)) : "-";
  setText("graph-scale", "peak " + rate(peak) + " over the last " + span);
}

function render(st) {
  const peers = st.getPeers.peers;
  renderSelf(st.getSelf);
  renderPeers(peers, st.rates);
  renderTree(st.getTree);
  renderSnake(st.getSnake);
  renderSessions(st.getSessions.sessions);
  renderDrops(st.getStats.drops);
  renderGraph(st.rates.history);
}

async function refresh() {
  try {
    const resp = await fetch("api/status", { cache: "no-store" });
    const st = await resp.json();
    if (!resp.ok) throw new Error(st.error || resp.statusText);
    render(st);
    refreshes++;
    const u = $("updated");
    u.dataset.refreshes = String(refreshes);
    u.textContent = "updated " + new Date().toLocaleTimeString();
    $("error").hidden = true;
  } catch (e) {
    const el = $("error");
    el.textContent = "cannot read the daemon's status: " + e.message;
    el.hidden = false;
  } finally {
    setTimeout(refresh, refreshMS);
  }
}

refresh();
