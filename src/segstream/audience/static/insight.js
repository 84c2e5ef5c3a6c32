// Audience insight: the profile view (why, until when, timeline), trait columns in the member
// list, the size chart and the overlap of two segments. The API calls are in api.js.

import { insightApi } from "./api.js";

const $ = (id) => document.getElementById(id);

const insight = {
  segments: () => [],
  columns: [], // trait paths shown next to each member
  traitCache: new Map(), // profile id -> traits (for the columns), refreshed per segment
  selected: null,
  resolution: "hour",
};

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function format(value) {
  if (value === undefined) return "—";
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** "in 3 days", "in 5 hours", "in 40 seconds" (or "now") for an instant. */
export function relative(iso, now = Date.now()) {
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  if (seconds <= 0) return "now";
  const units = [
    [86400, "day"],
    [3600, "hour"],
    [60, "minute"],
    [1, "second"],
  ];
  for (const [size, name] of units) {
    if (seconds >= size) {
      const n = Math.round(seconds / size);
      return `in ${n} ${name}${n === 1 ? "" : "s"}`;
    }
  }
  return "now";
}

function traitValue(traits, path) {
  let values = [traits];
  for (const part of path.split(".")) {
    const next = [];
    for (const value of values) {
      const items = Array.isArray(value) ? value : [value];
      for (const item of items) {
        if (item && typeof item === "object" && !Array.isArray(item) && part in item) next.push(item[part]);
      }
    }
    values = next;
  }
  return values.length === 0 ? "—" : values.map(format).join(", ");
}

// -- the explanation tree ----------------------------------------------------------------------

function describeWindow(window) {
  if (window.at_or_before) return `after ${window.later_than}`;
  if (window.before) return `after ${window.later_than}, before ${window.before}`;
  return `kept history (after ${window.later_than})`;
}

function describeNotFollowed(node, window) {
  const follow = `not followed by ${node.not_followed_by.event} within ${node.not_followed_by.within}`;
  const parts = [`${node.event}: ${node.candidates} selected ${window}; ${follow}`];
  const { satisfied_by: satisfied, blocked, waiting } = node;
  if (satisfied) parts.push(`the one at ${satisfied.at} had none until ${satisfied.until}`);
  if (blocked) parts.push(`the one at ${blocked.at} was followed at ${blocked.by}`);
  if (waiting) parts.push(`the one at ${waiting.at} counts from ${waiting.until} if none comes`);
  return parts.join("; ");
}

function describe(node) {
  switch (node.kind) {
    case "and":
      return "all of these (And)";
    case "or":
      return "any of these (Or)";
    case "not":
      return "not this";
    case "trait": {
      const operand = node.value === undefined ? "" : ` ${format(node.value)}`;
      const seen = node.values.length ? node.values.map(format).join(", ") : "no value";
      const from = node.derived_from ? ` (from ${node.derived_from})` : "";
      return `${node.trait} ${node.op}${operand} — the profile has ${seen}${from}`;
    }
    case "event": {
      const window = describeWindow(node.window);
      if (node.measure === "not_followed_by") return describeNotFollowed(node, window);
      const measure =
        node.measure === "count"
          ? `count ${node.op} ${format(node.value)}`
          : `${node.measure} of ${node.property} = ${format(node.measured)}, needs ${node.op} ${format(node.value)}`;
      return `${node.event}: ${node.selected} selected ${window}; ${measure}`;
    }
    case "sequence": {
      const step = (s) => {
        const matched = s.matched_at ? `matched at ${s.matched_at}` : "no match";
        return `${s.event} (${s.selected} selected, ${matched})`;
      };
      const steps = node.steps.map(step).join(" → ");
      return `sequence ${describeWindow(node.window)}: ${steps}`;
    }
    case "segment": {
      const membership = node.member
        ? `member of ${node.segment} since ${node.entered_at}`
        : `not a member of ${node.segment}`;
      if (node.for_at_least === undefined) return membership;
      const from = node.true_from ? `; true from ${node.true_from}` : "";
      return `${membership}, needs at least ${node.for_at_least}${from}`;
    }
    default:
      return `${node.kind} (shown as written)`;
  }
}

function renderTree(node) {
  const item = el("li", { class: node.truth ? "truth yes" : "truth no" });
  item.append(
    el("span", { class: "verdict", text: node.truth ? "✓ true" : "✗ false" }),
    " ",
    el("span", { text: describe(node) }),
  );
  if (node.children && node.children.length) {
    const list = el("ul", { class: "tree" });
    for (const child of node.children) list.append(renderTree(child));
    item.append(list);
  }
  return item;
}

/** What could keep the membership: new activity of the timed event types, or a trait change. */
function unless(tree) {
  const types = new Set();
  const walk = (node) => {
    if (node.kind === "event" && node.truth && node.window.at_or_before) types.add(node.event);
    for (const child of node.children || []) walk(child);
  };
  walk(tree);
  return types.size
    ? `unless another ${[...types].join(" or ")} event comes in`
    : "unless the profile changes";
}

function untilText(one) {
  if (one.member && one.leaves_at) {
    return `Leaves ${relative(one.leaves_at)} (${one.leaves_at}) ${unless(one.condition)}.`;
  }
  if (!one.member && one.enters_at) return `Enters ${relative(one.enters_at)} (${one.enters_at}) with no new activity.`;
  if (one.member) return one.time.bounded ? "Stays a member for the foreseeable future (searched ahead; see docs)." : "Time alone never removes it.";
  return "Time alone does not bring it in.";
}

const AGREEMENT = {
  current: "",
  timer_due: "A timer is due: the membership changes within a second.",
  backfill_pending: "The segment is being built: this profile has not been evaluated yet.",
  pending: "The membership has not caught up yet.",
  draft: "A draft: nothing is saved.",
};

function renderMembership(one) {
  const section = el("section", { class: "membership", "aria-labelledby": `why-${one.segment_id}` });
  const state = one.member ? "member" : one.truth ? "matches, not yet a member" : "not a member";
  section.append(
    el("h4", { id: `why-${one.segment_id}`, text: `${one.segment_name || one.segment_id} — ${state}` }),
  );
  if (one.entered_at) section.append(el("p", { class: "hint", text: `Entered ${one.entered_at}` }));
  section.append(el("p", { class: "until", text: untilText(one) }));
  if (AGREEMENT[one.agreement]) section.append(el("p", { class: "hint", text: AGREEMENT[one.agreement] }));
  const details = el("details", { class: "why" });
  details.append(el("summary", { text: "Why" }), el("ul", { class: "tree" }, renderTree(one.condition)));
  section.append(details);
  return section;
}

// -- the profile view ----------------------------------------------------------------------------

export async function openProfile(profileId, opener) {
  const dialog = $("profile-dialog");
  insight.returnFocus = opener || document.activeElement;
  $("profile-search").value = profileId;
  $("profile-status").textContent = `Loading ${profileId}…`;
  for (const id of ["profile-traits", "profile-activity", "profile-memberships", "profile-timeline"]) {
    $(id).replaceChildren();
  }
  const columns = dialog.querySelector(".profile-columns");
  columns.hidden = true;
  if (!dialog.open) dialog.showModal();
  try {
    const [profile, why, timeline] = await Promise.all([
      insightApi.profile(profileId),
      insightApi.explainAll(profileId),
      insightApi.timeline(profileId),
    ]);
    renderProfile(profile, why, timeline);
    columns.hidden = false;
    $("profile-status").textContent = `Profile ${profileId} (partition ${profile.partition}).`;
  } catch (error) {
    $("profile-status").textContent =
      error.status === 404 ? `There is no profile “${profileId}”.` : `Could not load it: ${error.message}`;
  }
}

function renderProfile(profile, why, timeline) {
  const traits = $("profile-traits");
  const rows = Object.entries(flatten(profile.traits));
  traits.replaceChildren(
    ...(rows.length
      ? rows.map(([path, value]) => el("div", {}, el("dt", { text: path }), el("dd", { text: format(value) })))
      : [el("p", { class: "hint", text: "No traits." })]),
  );
  const activity = $("profile-activity");
  activity.replaceChildren(
    ...(profile.activity.length
      ? profile.activity.map((e) =>
          el("li", {}, el("time", { text: e.at }), ` ${e.type} `, el("code", { text: JSON.stringify(e.properties) })),
        )
      : [el("li", { class: "hint", text: "No activity kept." })]),
  );
  const memberships = $("profile-memberships");
  memberships.replaceChildren(
    ...(why.segments.length
      ? why.segments.map(renderMembership)
      : [el("p", { class: "hint", text: "In no segment, and time alone brings it into none." })]),
  );
  const body = $("profile-timeline");
  body.replaceChildren(
    ...timeline.transitions.map((t) =>
      el(
        "tr",
        {},
        el("td", {}, el("time", { text: t.at })),
        el("td", { text: t.segment_id }),
        el("td", { text: t.type === "segment.entered" ? "entered" : "left" }),
        el("td", { text: causeText(t.cause) }),
      ),
    ),
  );
  if (!timeline.transitions.length) body.append(el("tr", {}, el("td", { colspan: "4", text: "No transitions yet." })));
}

function causeText(cause) {
  const kind = cause.kind.replace("_", " ");
  if (cause.event_id) return `${kind} ${cause.event_id}`;
  if (cause.segment_id) return `${kind} (${cause.segment_id})`;
  return kind;
}

function flatten(value, prefix = "", into = {}) {
  for (const [key, item] of Object.entries(value || {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (item && typeof item === "object" && !Array.isArray(item)) flatten(item, path, into);
    else into[path] = item;
  }
  return into;
}

// -- the member list: trait columns and links --------------------------------------------------------

/** A member row: a button that opens the profile view, and the chosen trait columns. */
export function memberItem(member) {
  const item = el("li", { class: "member-row" });
  const open = el("button", { type: "button", class: "link", text: member.profile_id });
  open.title = `partition ${member.partition}: open the profile`;
  open.addEventListener("click", () => openProfile(member.profile_id, open));
  item.append(open);
  for (const path of insight.columns) {
    const cell = el("span", { class: "trait-cell", "data-path": path, "data-profile": member.profile_id });
    cell.append(el("span", { class: "visually-hidden", text: `${path}: ` }));
    cell.append(el("span", { class: "trait-value", text: "…" }));
    item.append(cell);
  }
  fillTraits(member.profile_id, item);
  return item;
}

async function fillTraits(profileId, item) {
  if (!insight.columns.length) return;
  let traits = insight.traitCache.get(profileId);
  if (!traits) {
    try {
      traits = (await insightApi.profile(profileId, 0)).traits;
      insight.traitCache.set(profileId, traits);
    } catch {
      return;
    }
  }
  for (const cell of item.querySelectorAll(".trait-cell")) {
    cell.querySelector(".trait-value").textContent = traitValue(traits, cell.dataset.path);
  }
}

function renderColumnHeads() {
  const heads = $("member-columns");
  heads.replaceChildren(
    el("span", { text: "Profile" }),
    ...insight.columns.map((path) => el("span", { text: path })),
  );
  heads.hidden = insight.columns.length === 0;
  $("members-list").classList.toggle("with-traits", insight.columns.length > 0);
}

// -- size over time and overlap ------------------------------------------------------------------

/** Called when a segment is selected (and on every poll with the same id). */
export function showSegmentInsight(segmentId) {
  const box = $("segment-insight");
  box.hidden = !segmentId;
  if (!segmentId) return;
  if (insight.selected !== segmentId) {
    insight.selected = segmentId;
    insight.traitCache.clear();
    $("overlap-result").textContent = "";
    refreshChart().catch(() => {});
  }
  const select = $("overlap-with");
  const others = insight.segments().filter((s) => s.id !== segmentId);
  const key = others.map((s) => s.id).join("\n");
  if (select.dataset.key !== key) {
    select.dataset.key = key;
    select.replaceChildren(
      el("option", { value: "", text: "choose a segment" }),
      ...others.map((s) => el("option", { value: s.id, text: s.name })),
    );
  }
}

export async function refreshChart() {
  const id = insight.selected;
  if (!id) return;
  const history = await insightApi.history(id, insight.resolution);
  if (id !== insight.selected) return;
  drawChart(history);
}

function drawChart(history) {
  const figure = $("size-chart");
  const buckets = history.buckets;
  const width = 560;
  const height = 140;
  const pad = 28;
  const max = Math.max(1, ...buckets.map((b) => b.members), ...buckets.map((b) => Math.max(b.entered, b.left)));
  const x = (i) => pad + (buckets.length <= 1 ? 0 : (i * (width - 2 * pad)) / (buckets.length - 1));
  const y = (v) => height - pad - (v * (height - 2 * pad)) / max;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const span = history.resolution === "minute" ? "the last day, per minute" : "per hour";
  const first = buckets.length ? buckets[0].members : 0;
  const last = buckets.length ? buckets[buckets.length - 1].members : 0;
  const entered = buckets.reduce((n, b) => n + b.entered, 0);
  const left = buckets.reduce((n, b) => n + b.left, 0);
  const label = `Members of ${history.segment_id} ${span} since ${history.since}: from ${first} to ${last}; ${entered} entered, ${left} left.`;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("class", "chart");
  const add = (tag, attributes) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
    svg.append(node);
    return node;
  };
  add("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "axis" });
  add("line", { x1: pad, y1: pad, x2: pad, y2: height - pad, class: "axis" });
  const barWidth = Math.max(1, (width - 2 * pad) / Math.max(1, buckets.length) / 2);
  buckets.forEach((b, i) => {
    if (b.entered) add("rect", { x: x(i) - barWidth, y: y(b.entered), width: barWidth, height: height - pad - y(b.entered), class: "entered" });
    if (b.left) add("rect", { x: x(i), y: y(b.left), width: barWidth, height: height - pad - y(b.left), class: "left" });
  });
  const points = buckets.map((b, i) => `${x(i).toFixed(1)},${y(b.members).toFixed(1)}`).join(" ");
  if (points) add("polyline", { points, class: "members-line" });
  const text = (content, attributes) => {
    add("text", attributes).textContent = content;
  };
  text(String(max), { x: pad - 4, y: pad + 4, "text-anchor": "end" });
  text("0", { x: pad - 4, y: height - pad + 4, "text-anchor": "end" });
  if (buckets.length) {
    text(buckets[0].start.slice(0, 16).replace("T", " "), { x: pad, y: height - 8 });
    text(buckets[buckets.length - 1].start.slice(0, 16).replace("T", " "), { x: width - pad, y: height - 8, "text-anchor": "end" });
  }
  figure.replaceChildren(svg);
  $("size-caption").textContent = label;
}

async function runOverlap() {
  const a = insight.selected;
  const b = $("overlap-with").value;
  const out = $("overlap-result");
  if (!a || !b) {
    out.textContent = "Choose a second segment.";
    return;
  }
  out.textContent = "Counting…";
  try {
    const answer = await insightApi.overlap([a, b]);
    const pair = answer.pairs[0];
    const jaccard = pair.jaccard === null ? "—" : `${Math.round(pair.jaccard * 1000) / 10} %`;
    out.textContent = `In both: ${pair.both} · only ${a}: ${pair.only_a} · only ${b}: ${pair.only_b} · overlap (Jaccard): ${jaccard}`;
  } catch (error) {
    out.textContent = `Could not count: ${error.message}`;
  }
}

// -- wiring ------------------------------------------------------------------------------------

/** `segments`: the current segment rows; `rerender`: redraws the member list. */
export function initInsight(segments, rerender) {
  insight.segments = segments;
  const dialog = $("profile-dialog");
  $("profile-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("profile-search").value.trim();
    if (id) openProfile(id, $("profile-search"));
  });
  $("profile-open-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("profile-find").value.trim();
    if (id) openProfile(id, $("profile-find"));
  });
  $("profile-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    if (insight.returnFocus && insight.returnFocus.focus) insight.returnFocus.focus();
  });
  $("member-traits").addEventListener("change", () => {
    insight.columns = $("member-traits")
      .value.split(",")
      .map((s) => s.trim())
      .filter(Boolean)
      .slice(0, 5);
    renderColumnHeads();
    rerender();
  });
  $("chart-resolution").addEventListener("change", () => {
    insight.resolution = $("chart-resolution").value;
    refreshChart().catch(() => {});
  });
  $("overlap-run").addEventListener("click", runOverlap);
  renderColumnHeads();
}
