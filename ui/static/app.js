// flexhub register console. Reads the REST API with the user's key; builds
// the DOM with textContent only, so no register text is ever parsed as HTML.
"use strict";

const state = { key: sessionStorage.getItem("flexhub-key") || "", me: null, tab: "overview" };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(path) {
  const res = await fetch(path, { headers: { Authorization: "Bearer " + state.key } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const where = (body.errors || []).map(e => e.location).filter(Boolean).join(", ");
    throw new Error(`${res.status} ${body.title || ""}: ${body.detail || ""}${where ? " (" + where + ")" : ""}`);
  }
  return body;
}

// send writes through the API; a refusal carries every problem the API
// listed (problems), e.g. each element of an invalid grid model.
async function send(method, path, body, contentType) {
  const headers = { Authorization: "Bearer " + state.key };
  if (contentType) headers["Content-Type"] = contentType;
  const res = await fetch(path, { method, headers, body });
  const out = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(`${res.status} ${out.title || ""}: ${(out.errors || []).length > 1 ? out.errors.length + " problems" : out.detail || ""}`);
    err.problems = (out.errors || []).map(e => e.message);
    throw err;
  }
  return out;
}

// all follows next_cursor until the list ends (at most 2,000 rows here).
async function all(path) {
  let items = [], after = "";
  for (let i = 0; i < 4; i++) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}limit=500${after ? "&after=" + encodeURIComponent(after) : ""}`);
    items = items.concat(page.items || []);
    if (!page.next_cursor) break;
    after = page.next_cursor;
  }
  return items;
}

const q = v => (v ? `${v.value} ${v.unit}` : "");
const t = v => (v ? v.replace("T", " ").replace(/\.\d+Z$/, "Z") : "");
const short = id => (id ? id.slice(0, 8) + "…" : "");

// names maps resource and product ids the caller may see to their names.
async function names() {
  const [rs, ps] = await Promise.all([all("/v1/resources").catch(() => []), all("/v1/products").catch(() => [])]);
  const m = {};
  for (const x of rs.concat(ps)) m[x.id] = x.name;
  return id => m[id] || short(id);
}
const kw = v => (!v ? 0 : v.value * ({ W: 0.001, kW: 1, MW: 1000 }[v.unit] || 0));

function badge(status) {
  return el("span", { class: "badge " + status }, status.replaceAll("_", " "));
}

function table(columns, rows, onclick) {
  if (!rows.length) return el("p", { class: "empty" }, "Nothing here for your party.");
  return el("table", {},
    el("thead", {}, el("tr", {}, columns.map(c => el("th", {}, c[0])))),
    el("tbody", {}, rows.map(r => el("tr", onclick ? { class: "click", onclick: () => onclick(r) } : {},
      columns.map(c => el("td", {}, c[1](r)))))));
}

// bars draws a horizontal bar chart of [label, value, status] rows.
function bars(title, rows, unit) {
  const width = 640, rowH = 18, left = 200, max = Math.max(1, ...rows.map(r => r[1]));
  const h = rows.length * rowH + 24;
  const g = svg("svg", { viewBox: `0 0 ${width} ${h}`, class: "chart", role: "img", "aria-label": title });
  rows.forEach(([label, value, status], i) => {
    const y = i * rowH + 4, w = Math.max(1, (width - left - 70) * value / max);
    g.append(svg("text", { x: left - 6, y: y + 12, class: "label", "text-anchor": "end" }, label));
    g.append(svg("rect", { x: left, y, width: w, height: rowH - 5, class: "bar " + (status || "") }));
    g.append(svg("text", { x: left + w + 4, y: y + 12, class: "value" }, `${Math.round(value * 10) / 10} ${unit}`));
  });
  return el("figure", {}, el("figcaption", {}, title), g);
}

function counts(items, key) {
  const c = {};
  for (const it of items) c[it[key]] = (c[it[key]] || 0) + 1;
  return Object.entries(c).sort();
}

async function overview(main) {
  const roles = state.me.roles;
  const [resources, pqs, contracts, chain] = await Promise.all([
    all("/v1/resources").catch(() => []),
    all("/v1/prequalifications").catch(() => []),
    all("/v1/contracts").catch(() => []),
    api("/v1/audit/verify"),
  ]);
  main.append(el("section", { class: "cards" },
    card("Resources", resources.length, counts(resources, "status")),
    card("Prequalifications", pqs.length, counts(pqs, "status")),
    card("Contracts", contracts.length, counts(contracts, "status")),
    el("div", { class: "card" }, el("h3", {}, "Audit trail"),
      el("div", { class: "big " + (chain.ok ? "ok" : "broken") }, chain.ok ? "intact" : "BROKEN"),
      el("p", {}, `${chain.entries} entries verified`),
      chain.ok ? el("p", { class: "mono" }, "head " + (chain.head || "").slice(0, 16) + "…") : el("p", {}, `first broken entry: ${chain.first_broken} — ${chain.problem}`))));
  const units = resources.filter(r => r.kind === "unit" && r.status !== "deregistered");
  if (units.length) {
    const rows = units.map(r => [r.name, kw(r.technical.max_up) + kw(r.technical.max_down), r.unit_type]).sort((a, b) => b[1] - a[1]).slice(0, 40);
    main.append(bars(`Flexibility per unit (upward + downward, kW) — ${roles.join(", ")} view`, rows, "kW"));
  }
}

function card(title, n, byStatus) {
  return el("div", { class: "card" }, el("h3", {}, title), el("div", { class: "big" }, n),
    el("p", {}, byStatus.map(([s, c]) => el("span", { class: "pill" }, badge(s), " ", c))));
}

async function resources(main) {
  const items = await all("/v1/resources");
  const detail = el("div", { class: "detail" });
  main.append(table([
    ["Name", r => r.name], ["Kind", r => r.kind + (r.unit_type ? " · " + r.unit_type.replaceAll("_", " ") : "")],
    ["Max up", r => q(r.technical.max_up)], ["Max down", r => q(r.technical.max_down)],
    ["Energy", r => q(r.technical.energy_limit)], ["Status", r => badge(r.status)], ["Version", r => r.version],
    ["Since", r => t(r.valid_from)],
  ], items, async r => {
    detail.replaceChildren(el("h3", {}, `Versions of ${r.name}`));
    const vs = await api(`/v1/resources/${r.id}/versions`);
    detail.append(table([["Version", v => v.version], ["Valid from", v => t(v.valid_from)], ["Valid to", v => t(v.valid_to) || "now"],
      ["Status", v => badge(v.status)], ["Max up", v => q(v.technical.max_up)], ["Max down", v => q(v.technical.max_down)]], vs.items || vs));
  }), detail);
}

async function prequalifications(main) {
  const [items, name] = await Promise.all([all("/v1/prequalifications"), names()]);
  main.append(table([
    ["Resource", p => name(p.resource_id)], ["Product", p => name(p.product_id)], ["Status", p => badge(p.status)],
    ["Rounds", p => p.messages.filter(m => m.type === "information_requested").length],
    ["Cap", p => (p.decision && p.decision.max_power ? q(p.decision.max_power) : "")],
    ["Valid until", p => (p.decision && p.decision.valid_until ? t(p.decision.valid_until) : "")], ["Updated", p => t(p.updated_at)],
  ], items));
}

async function gridPrequalifications(main) {
  const [items, name] = await Promise.all([all("/v1/grid-prequalifications"), names()]);
  main.append(table([
    ["Resource", g => name(g.resource_id)], ["Status", g => badge(g.status)], ["Limit up", g => q(g.limit_up)],
    ["Limit down", g => q(g.limit_down)], ["Reasons", g => g.reasons || ""], ["Updated", g => t(g.updated_at)],
  ], items));
}

async function contracts(main) {
  const [items, name] = await Promise.all([all("/v1/contracts"), names()]);
  main.append(table([
    ["Product", c => name(c.product_id)], ["Status", c => badge(c.status)], ["From", c => t(c.validity.start)],
    ["Until", c => t(c.validity.end)], ["Resources", c => (c.resource_ids || []).length || "all"], ["Updated", c => t(c.updated_at)],
  ], items));
}

async function products(main) {
  const items = await all("/v1/products");
  main.append(table([
    ["Name", p => p.name], ["Service", p => p.service.replaceAll("_", " ")], ["Direction", p => p.direction],
    ["Min bid", p => q(p.min_bid_size || p.min_bid_size_reactive)], ["Resolution", p => p.time_resolution],
    ["Full activation", p => p.full_activation_time], ["Baseline", p => p.baseline_method.replaceAll("_", " ")], ["Status", p => badge(p.status)],
  ], items));
}

async function meteringPoints(main) {
  const items = await all("/v1/metering-points");
  main.append(table([
    ["Code", m => m.code], ["Direction", m => m.direction], ["Supplier", m => short((m.assignments.at(-1) || {}).supplier_id)],
    ["BRP", m => short((m.assignments.at(-1) || {}).brp_id)], ["Switches", m => Math.max(0, m.assignments.length - 1)], ["Since", m => t(m.created_at)],
  ], items));
}

async function audit(main) {
  const page = await api("/v1/audit?limit=200");
  main.append(table([
    ["#", e => e.seq], ["At", e => t(e.at)], ["Action", e => e.action], ["Object", e => `${e.object_kind} ${short(e.object_id)}`],
    ["By", e => short(e.actor_id)], ["Hash", e => el("span", { class: "mono" }, e.hash.slice(0, 12) + "…")],
  ], page.items));
}

// outcomeChart draws demand against what was bought per interval: bars
// for demand (outline) and accepted volume (filled), shortfall in red.
function outcomeChart(title, intervals) {
  const width = 900, height = 220, left = 48, bottom = 36, top = 10;
  const max = Math.max(1, ...intervals.map(i => Math.max(i.demand, i.accepted)));
  const w = (width - left - 10) / Math.max(1, intervals.length);
  const y = v => top + (height - top - bottom) * (1 - v / max);
  const g = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title });
  for (const f of [0, 0.5, 1]) {
    g.append(svg("line", { x1: left, x2: width - 10, y1: y(max * f), y2: y(max * f), class: "grid" }));
    g.append(svg("text", { x: left - 4, y: y(max * f) + 4, class: "value", "text-anchor": "end" }, `${Math.round(max * f / 100) / 10}`));
  }
  intervals.forEach((iv, k) => {
    const x = left + k * w;
    g.append(svg("rect", { x: x + 1, y: y(iv.accepted), width: Math.max(1, w - 2), height: y(0) - y(iv.accepted), class: "bar accepted" }));
    if (iv.shortfall > 0) g.append(svg("rect", { x: x + 1, y: y(iv.accepted + iv.shortfall), width: Math.max(1, w - 2), height: y(0) - y(iv.shortfall), class: "bar shortfall" }));
    g.append(svg("rect", { x: x + 1, y: y(iv.demand), width: Math.max(1, w - 2), height: y(0) - y(iv.demand), class: "demand" }));
    if (intervals.length <= 24 || k % 4 === 0) g.append(svg("text", { x: x + w / 2, y: height - bottom + 14, class: "label", "text-anchor": "middle" }, iv.start.slice(11, 16)));
  });
  g.append(svg("text", { x: left, y: height - 6, class: "label" }, "kW per quarter hour (UTC): outline = need, green = bought, red = shortfall"));
  return el("figure", {}, el("figcaption", {}, title), g);
}

async function market(main) {
  const sessions = await all("/v1/market-sessions");
  const detail = el("div", { class: "detail" });
  main.append(table([
    ["Session", m => m.name || short(m.id)], ["Kind", m => m.kind.replaceAll("_", " ")], ["Gate opens", m => t(m.gate_opening)],
    ["Gate closes", m => t(m.gate_closure)], ["Pricing", m => m.pricing.replaceAll("_", " ")], ["Status", m => badge(m.status)],
  ], sessions.slice().reverse(), async m => {
    detail.replaceChildren(el("h3", {}, m.name || m.id));
    if (m.status !== "cleared") { detail.append(el("p", { class: "empty" }, `Not cleared yet: the gate closes at ${t(m.gate_closure)}.`)); return; }
    const [outcome, awards] = await Promise.all([api(`/v1/market-sessions/${m.id}/outcome`), all(`/v1/awards?session_id=${m.id}`)]);
    for (const n of outcome.needs) detail.append(outcomeChart(`${n.direction} · ${n.buys} · ${n.unit === "W" ? "active" : "reactive"} power`, n.intervals));
    detail.append(el("h3", {}, "Awards you may see"), table([
      ["Bid", a => short(a.bid_id)], ["Status", a => badge(a.status)], ["Accepted kW·quarter hours", a => Math.round(a.intervals.reduce((s, i) => s + i.accepted, 0) / 100) / 10],
      ["Amount", a => `${a.amount.amount} ${a.amount.currency}`], ["Reason", a => a.reason || ""],
    ], awards));
  }), detail);
}

// myData shows a party's consents (given as owner, held as data user) and
// the access log: who read its consumers' data, on which basis, and
// which reads were refused (docs/CONSENT.md).
async function myData(main) {
  const mine = state.me.roles.includes("consumer");
  const [given, held, log] = await Promise.all([
    mine ? all("/v1/consents?owner_id=self") : Promise.resolve([]),
    all("/v1/consents?data_user_id=self").catch(() => []),
    api(mine ? "/v1/data-access?limit=500" : "/v1/data-access?reader_id=self&limit=500"),
  ]);
  const consentTable = (title, items, other) => [el("h3", {}, title), table([
    [other[0], c => short(c[other[1]])], ["Metering points", c => c.metering_point_ids.length], ["Scopes", c => c.scopes.join(", ").replaceAll("_", " ")],
    ["Purpose", c => c.purpose], ["From", c => t(c.valid_from)], ["Until", c => t(c.valid_to)], ["Status", c => badge(c.status)],
  ], items)];
  if (mine) main.append(...consentTable("Consents you gave", given, ["Data user", "data_user_id"]));
  main.append(...consentTable("Consents you hold", held, ["Owner", "owner_id"]));
  const entries = log.items || [];
  const per = {};
  for (const a of entries) {
    const k = `${short(a.reader_id)} ${a.outcome}`;
    per[k] = per[k] || [k, 0, a.outcome === "refused" ? "rejected" : "approved"];
    per[k][1]++;
  }
  main.append(el("h3", {}, mine ? "Who read your data" : "Your reads of consumer data"));
  if (entries.length) main.append(bars("reads per reader (red: refused)", Object.values(per).sort((a, b) => b[1] - a[1]), "reads"));
  main.append(table([
    ["#", a => a.seq], ["At", a => t(a.at)], ["Reader", a => short(a.reader_id)], ["Metering point", a => short(a.metering_point_id)],
    ["Data", a => a.scope.replaceAll("_", " ")], ["What", a => a.what], ["Channel", a => a.channel],
    ["Basis", a => (a.basis || "").replaceAll("_", " ")], ["Outcome", a => badge(a.outcome === "refused" ? "rejected" : "approved")], ["Reason", a => a.reason || ""],
  ], entries.slice().reverse()));
}

// voltageChart draws a power flow's voltage per bus (in the model's bus
// order) against each bus's band: red bars are outside it.
function voltageChart(title, pf) {
  const width = 900, height = 240, left = 48, bottom = 30, top = 10;
  const buses = pf.buses || [];
  const lo = Math.min(...buses.map(b => Math.min(b.vm_pu, b.vmin_pu))) - 0.01;
  const hi = Math.max(...buses.map(b => Math.max(b.vm_pu, b.vmax_pu))) + 0.01;
  const y = v => top + (height - top - bottom) * (hi - v) / (hi - lo);
  const w = (width - left - 10) / Math.max(1, buses.length);
  const g = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title });
  for (const v of [lo + 0.01, pf.default_band_pu[0], 1, pf.default_band_pu[1], hi - 0.01]) {
    g.append(svg("line", { x1: left, x2: width - 10, y1: y(v), y2: y(v), class: v === 1 ? "grid" : "grid band" }));
    g.append(svg("text", { x: left - 4, y: y(v) + 4, class: "value", "text-anchor": "end" }, v.toFixed(3)));
  }
  buses.forEach((b, k) => {
    const bad = b.vm_pu < b.vmin_pu - 1e-9 || b.vm_pu > b.vmax_pu + 1e-9;
    const r = svg("rect", { x: left + k * w, y: y(Math.max(b.vm_pu, lo)), width: Math.max(0.5, w - (w > 3 ? 1 : 0)), height: y(lo) - y(Math.max(b.vm_pu, lo)), class: "bar " + (bad ? "violation" : "ok") });
    r.append(svg("title", {}, `bus ${b.id}: ${b.vm_pu.toFixed(4)} p.u.`));
    g.append(r);
  });
  g.append(svg("text", { x: left, y: height - 8, class: "label" }, `p.u. per bus in the model's order (${buses.length} buses); dashed: default band; red: outside the bus's band`));
  return el("figure", {}, el("figcaption", {}, title), g);
}

// forecastChart draws a grid forecast's day: per 15-minute interval the
// lowest voltage (bar) and the highest loading (dot, right axis); red
// intervals break a limit (their violations in the bar's tooltip).
function forecastChart(title, f) {
  const width = 900, height = 240, left = 48, right = 48, bottom = 30, top = 10;
  const st = f.states || [];
  const lo = Math.min(0.9, ...st.map(s => s.min_vm_pu)) - 0.01, hi = Math.max(1.1, ...st.map(s => s.max_vm_pu)) + 0.005;
  const lmax = Math.max(100, ...st.map(s => s.max_loading_percent)) * 1.1;
  const y = v => top + (height - top - bottom) * (hi - v) / (hi - lo);
  const yl = v => top + (height - top - bottom) * (1 - v / lmax);
  const w = (width - left - right) / Math.max(1, st.length);
  const g = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title });
  for (const v of [0.9, 1, 1.1]) {
    g.append(svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: v === 1 ? "grid" : "grid band" }));
    g.append(svg("text", { x: left - 4, y: y(v) + 4, class: "value", "text-anchor": "end" }, v.toFixed(2)));
  }
  g.append(svg("text", { x: width - right + 4, y: yl(100) + 4, class: "value" }, "100 %"));
  st.forEach((s, k) => {
    const bad = (s.violations || []).length > 0;
    const r = svg("rect", { x: left + k * w, y: y(s.min_vm_pu), width: Math.max(0.5, w - 1), height: Math.max(0, y(lo) - y(s.min_vm_pu)), class: "bar " + (bad ? "violation" : "ok") });
    r.append(svg("title", {}, `${t(s.start)}: lowest ${s.min_vm_pu.toFixed(4)} p.u. at bus ${s.min_vm_bus}; highest loading ${s.max_loading_percent.toFixed(1)} % (${s.max_loading_element || "–"})` + (bad ? "\n" + s.violations.slice(0, 5).join("\n") : "")));
    g.append(r);
    g.append(svg("circle", { cx: left + k * w + w / 2, cy: yl(s.max_loading_percent), r: 2.5, class: "dot " + (s.max_loading_percent > 100 ? "violation" : "ok") }));
  });
  g.append(svg("text", { x: left, y: height - 8, class: "label" }, `bars: lowest voltage per interval (p.u., ${st.length} × 15 min from ${t(f.start)}); dots: highest loading (right axis); red: a limit broken`));
  return el("figure", { "data-chart": "forecast" }, el("figcaption", {}, title), g);
}

// gridForecasts lists a model's forecasts and draws the newest.
async function gridForecasts(detail, m) {
  const fs = await all(`/v1/grid-models/${m.id}/forecasts`);
  if (!fs.length) { detail.append(el("p", { class: "empty" }, "No forecast yet: the traffic light and the needs use the base case (POST /v1/grid-models/{id}/forecasts).")); return; }
  const newest = fs[fs.length - 1];
  const bad = newest.states.filter(s => (s.violations || []).length);
  detail.append(forecastChart(`Forecast ${short(newest.id)}: ${bad.length} of ${newest.states.length} intervals break a limit`, newest),
    el("h3", {}, "Forecasts"),
    table([["Forecast", f => short(f.id)], ["From", f => t(f.start)], ["Intervals", f => f.intervals], ["Intervals with violations", f => f.states.filter(s => (s.violations || []).length).length],
      ["Uploaded", f => t(f.created_at)]], fs.slice().reverse()));
}

// gridModels: the grid areas whose models the caller may read (its own as
// DSO, those in its control areas as TSO), the current version, and for
// the DSO an upload and the base-case power flow with its violations
// (docs/GRID_MODELS.md).
async function gridModels(main) {
  const areas = await all("/v1/grid-areas");
  const rows = [];
  for (const a of areas) {
    try {
      rows.push({ area: a, model: await api(`/v1/grid-areas/${a.id}/grid-model`) });
    } catch (err) {
      if (err.message.startsWith("404") && a.dso_id === state.me.id) rows.push({ area: a, model: null });
    }
  }
  const detail = el("div", { class: "detail" });
  const open = async r => {
    const mine = r.area.dso_id === state.me.id, m = r.model;
    detail.replaceChildren(el("h3", {}, `${r.area.name} (${r.area.eic})`));
    if (mine) {
      const format = el("select", { id: "gm-format" }, el("option", { value: "pandapower" }, "pandapower JSON"), el("option", { value: "simbench" }, "SimBench folder (zip)"), el("option", { value: "cim" }, "IEC CIM RDF/XML"));
      const file = el("input", { id: "gm-file", type: "file", accept: ".json,.zip,.xml" });
      const out = el("div", { class: "upload-result" });
      const form = el("form", { class: "upload", onsubmit: async ev => {
        ev.preventDefault();
        if (!file.files.length) return;
        out.replaceChildren(el("p", { class: "loading" }, "Validating and storing…"));
        try {
          const up = await send("POST", `/v1/grid-areas/${r.area.id}/grid-models?format=${format.value}`, file.files[0], "application/octet-stream");
          r.model = up.model;
          await open(r);
          detail.querySelector(".upload-result").replaceChildren(el("p", {}, `Version ${up.model.model_version} stored; ${up.carried_over_mappings} mappings carried over, ${up.dropped_mappings.length} dropped.`));
        } catch (err) {
          out.replaceChildren(el("p", { class: "error" }, "Refused, nothing stored: " + err.message),
            el("ul", { class: "problems" }, (err.problems || []).map(p => el("li", {}, p))));
        }
      } }, el("label", {}, "Upload a new version: "), format, " ", file, " ", el("button", { type: "submit" }, "Upload"));
      detail.append(form, out);
    }
    if (!m) { detail.append(el("p", { class: "empty" }, "No grid model uploaded yet.")); return; }
    const c = m.counts;
    detail.append(el("section", { class: "cards" },
      el("div", { class: "card" }, el("h3", {}, "Version"), el("div", { class: "big" }, m.model_version), el("p", {}, `${m.format} · uploaded ${t(m.uploaded_at)}`), el("p", { class: "mono" }, "sha256 " + m.file_sha256.slice(0, 16) + "…")),
      el("div", { class: "card" }, el("h3", {}, "Elements"), el("div", { class: "big" }, `${c.buses} buses`),
        el("p", {}, `${c.lines} lines · ${c.transformers} transformers · ${c.switches} switches · ${c.slacks} slacks · ${c.loads} loads · ${c.static_generators} generators`)),
      el("div", { class: "card" }, el("h3", {}, "Voltage levels"), el("div", { class: "big" }, m.voltage_levels_kv.join(" / ") + " kV"))));
    await gridForecasts(detail, m);
    if (!mine) { detail.append(el("p", { class: "empty" }, "Power flows are run by the grid area's DSO.")); return; }
    const pf = await send("POST", `/v1/grid-models/${m.id}/power-flow`, "{}", "application/json");
    detail.append(el("section", { class: "cards" },
      el("div", { class: "card" }, el("h3", {}, "Lowest voltage"), el("div", { class: "big" }, pf.vmin.vm_pu.toFixed(4) + " p.u."), el("p", {}, `at bus ${pf.vmin.id}`)),
      el("div", { class: "card" }, el("h3", {}, "Highest voltage"), el("div", { class: "big" }, pf.vmax.vm_pu.toFixed(4) + " p.u."), el("p", {}, `at bus ${pf.vmax.id}`)),
      el("div", { class: "card" }, el("h3", {}, "Losses"), el("div", { class: "big" }, (pf.losses_mw * 1000).toFixed(1) + " kW"), el("p", {}, `load ${(pf.load_mw * 1000).toFixed(0)} kW · ${pf.iterations} Newton steps`)),
      el("div", { class: "card" }, el("h3", {}, "Violations"), el("div", { class: "big " + (pf.violations.length ? "broken" : "ok") }, pf.violations.length), el("p", {}, "base case"))));
    detail.append(voltageChart(`Base-case voltage profile, version ${m.model_version}`, pf));
    const shown = pf.violations.slice(0, 200);
    detail.append(el("h3", {}, pf.violations.length > shown.length ? `Violations (first ${shown.length} of ${pf.violations.length})` : "Violations"),
      table([["Kind", v => el("span", { class: "badge " + (v.kind === "overload" ? "rejected" : "limited") }, v.kind)], ["Element", v => `${v.element} ${v.id}`], ["Value", v => v.value.toFixed(4)],
        ["Limit", v => v.limit], ["", v => v.message]], shown));
  };
  main.append(table([
    ["Grid area", r => r.area.name], ["EIC", r => r.area.eic], ["Version", r => (r.model ? r.model.model_version : "none")],
    ["Format", r => (r.model ? r.model.format : "")], ["Buses", r => (r.model ? r.model.counts.buses : "")], ["Lines", r => (r.model ? r.model.counts.lines : "")],
    ["Transformers", r => (r.model ? r.model.counts.transformers : "")], ["Uploaded", r => (r.model ? t(r.model.uploaded_at) : "")],
  ], rows, open), detail);
}

const views = { overview, resources, prequalifications, "grid-prequalifications": gridPrequalifications, contracts, products, market, "metering-points": meteringPoints, "my-data": myData, "grid-models": gridModels, audit };

async function show(tab) {
  state.tab = tab;
  document.querySelectorAll("#tabs button").forEach(b => b.classList.toggle("active", b.dataset.tab === tab));
  const main = document.getElementById("main");
  main.replaceChildren(el("p", { class: "loading" }, "Loading…"));
  const frag = el("div", {});
  try {
    await views[tab](frag);
    main.replaceChildren(frag);
  } catch (err) {
    main.replaceChildren(el("p", { class: "error" }, err.message));
  }
}

async function signIn(key) {
  state.key = key.trim();
  try {
    state.me = await api("/v1/me");
  } catch (err) {
    sessionStorage.removeItem("flexhub-key");
    document.getElementById("main").replaceChildren(el("p", { class: "error" }, "Sign-in failed: " + err.message));
    return;
  }
  sessionStorage.setItem("flexhub-key", state.key);
  document.getElementById("login").hidden = true;
  document.getElementById("logout").hidden = false;
  document.getElementById("tabs").hidden = false;
  // Grid models are for system operators only (the API refuses others).
  document.querySelector('#tabs button[data-tab="grid-models"]').hidden = !state.me.roles.some(r => r === "dso" || r === "tso");
  document.getElementById("who").replaceChildren(el("strong", {}, state.me.name), " ", el("span", { class: "mono" }, state.me.eic), " ",
    ...state.me.roles.map(r => el("span", { class: "role" }, r.replaceAll("_", " "))));
  show("overview");
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login").addEventListener("submit", ev => { ev.preventDefault(); signIn(document.getElementById("key").value); });
  document.getElementById("logout").addEventListener("click", () => { sessionStorage.removeItem("flexhub-key"); location.reload(); });
  document.querySelectorAll("#tabs button").forEach(b => b.addEventListener("click", () => show(b.dataset.tab)));
  if (state.key) signIn(state.key);
});
