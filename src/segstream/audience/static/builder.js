// The condition builder: a tree of conditions (SPEC §4.1) edited with native form controls.
//
// The model mirrors the JSON condition one node for one node, so that every node kind and
// operator can be built and a loaded condition is written back exactly as it was unless edited:
//   {k: "group", op: "and"|"or", children}     {"and": [...]} / {"or": [...]}
//   {k: "not", child}                          {"not": C}
//   {k: "trait", type, path, op, value, vt}    {"trait": PATH, "op", "value", "ignore_case"}
//   {k: "event", type, event, where, within, measure, follow}
//        follow: null or {type, event, where, whereKey, within}  "not_followed_by"
//   {k: "sequence", steps: [{type, event, where, whereKey}], within}  {"sequence": [...]}
//   {k: "prop", path, op, value, vt}           a `where` item {"property": PATH, ...}
//   {k: "segment", id, tenure}                 {"segment": ID, "for_at_least": D}
//   {k: "new"}                                 a condition whose type is not chosen yet
// Every rendered node carries `data-path` (its JSON path, e.g. `condition.and[1]`), the form
// the API names in a 422; errors are shown in the list of the deepest node or field whose
// path starts the error's path.

import {
  ACTIVITIES,
  DAY_UNITS,
  DURATION_UNITS,
  KIND_OPERATORS,
  MEASURES,
  MEASURE_OPERATORS,
  NUMERIC_PROPERTIES,
  OPERATORS,
  TEXT_OPERATORS,
  TRAITS,
  VALUE_TYPES,
  WINDOWS,
} from "./vocabulary.js";

let uids = 0;
const uidOf = (node) => {
  if (node.uid === undefined) {
    uids += 1;
    node.uid = uids;
  }
  return node.uid;
};
const idFor = (node, field) => `n${uidOf(node)}-${field}`;
const shapeOf = (op) => (OPERATORS[op] ? OPERATORS[op].shape : "scalar");

// -- the model ------------------------------------------------------------------------------

export function newLeaf() {
  return { k: "new" };
}

function traitNode(type) {
  const meta = TRAITS[type];
  return {
    k: "trait",
    type,
    path: meta.path === null ? "custom." : meta.path,
    op: KIND_OPERATORS[meta.kind][0],
    value: undefined,
    vt: meta.kind === "number" ? "number" : "text",
  };
}

function eventNode(type) {
  return {
    k: "event",
    type,
    event: type === "custom" ? "custom." : type,
    where: [],
    whereKey: false,
    within: { mode: "any" },
    measure: { kind: "none" },
  };
}

function stepNode(type) {
  return { type, event: type === "custom" ? "custom." : type, where: [], whereKey: false };
}

function sequenceNode() {
  return { k: "sequence", steps: [stepNode("product.viewed"), stepNode("cart.added")], within: { mode: "any" } };
}

function followNode() {
  return { ...stepNode("order.purchased"), within: "1h" };
}

function valueType(value) {
  if (Array.isArray(value)) return value.length ? valueType(value[0]) : "text";
  if (typeof value === "number") return "number";
  if (typeof value === "boolean") return "bool";
  return "text";
}

function comparisonFrom(json) {
  const node = { op: json.op, value: json.value, vt: valueType(json.value) };
  if ("ignore_case" in json) node.ic = json.ignore_case;
  node.icFalse = json.ignore_case === false;
  return node;
}

function fits(meta, node) {
  if (!KIND_OPERATORS[meta.kind].includes(node.op)) return false;
  const shape = shapeOf(node.op);
  if (shape !== "scalar" && shape !== "list") return true;
  if (node.value === undefined) return true;
  if (meta.kind === "number") return node.vt === "number";
  if (meta.kind === "date") return typeof node.value === "string";
  if (meta.kind === "enum") {
    const known = new Set(meta.options.map(([code]) => code));
    const values = Array.isArray(node.value) ? node.value : [node.value];
    return values.every((value) => known.has(value));
  }
  return node.vt === "text";
}

/** The model of a JSON condition (anything the page cannot show is kept as it is). */
export function fromJSON(json) {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return { k: "raw", raw: json };
  for (const op of ["and", "or"]) {
    if (op in json && Array.isArray(json[op])) {
      return { k: "group", op, children: json[op].map(fromJSON) };
    }
  }
  if ("not" in json) return { k: "not", child: fromJSON(json.not) };
  if (typeof json.trait === "string") {
    const node = { k: "trait", path: json.trait, ...comparisonFrom(json) };
    const known = Object.keys(TRAITS).find((key) => TRAITS[key].path === json.trait);
    node.type = known && fits(TRAITS[known], node) ? known : "custom";
    return node;
  }
  if (typeof json.event === "string") return eventFrom(json);
  if (Array.isArray(json.sequence)) {
    const steps = json.sequence.map((step) =>
      step && typeof step === "object" && typeof step.event === "string" ? stepFrom(step) : null,
    );
    if (steps.includes(null)) return { k: "raw", raw: json };
    return { k: "sequence", steps, within: windowFrom(json.within) };
  }
  if ("segment" in json) {
    const node = { k: "segment", id: json.segment };
    if ("for_at_least" in json) node.tenure = json.for_at_least;
    return node;
  }
  return { k: "raw", raw: json };
}

function whereFrom(json) {
  return (Array.isArray(json.where) ? json.where : []).map((item) => ({
    k: "prop",
    path: item && typeof item === "object" ? item.property : "",
    ...comparisonFrom(item && typeof item === "object" ? item : {}),
  }));
}

function stepFrom(json) {
  const type = json.event in ACTIVITIES && json.event !== "custom" ? json.event : "custom";
  return { type, event: json.event, where: whereFrom(json), whereKey: "where" in json };
}

function windowFrom(within) {
  if (typeof within === "string") return { mode: "last", duration: within };
  if (within && typeof within === "object") {
    return { mode: "range", after: within.after, before: within.before };
  }
  return { mode: "any" };
}

function eventFrom(json) {
  const type = json.event in ACTIVITIES && json.event !== "custom" ? json.event : "custom";
  const node = {
    k: "event",
    type,
    event: json.event,
    where: (Array.isArray(json.where) ? json.where : []).map((item) => ({
      k: "prop",
      path: item && typeof item === "object" ? item.property : "",
      ...comparisonFrom(item && typeof item === "object" ? item : {}),
    })),
    whereKey: "where" in json,
    within: windowFrom(json.within),
    measure: { kind: "none" },
    follow: null,
  };
  const follow = json.not_followed_by;
  if (follow && typeof follow === "object" && typeof follow.event === "string") {
    node.follow = { ...stepFrom(follow), within: follow.within };
  }
  if (json.count && typeof json.count === "object") {
    node.measure = { kind: "count", op: json.count.op, value: json.count.value };
  } else {
    for (const kind of ["sum", "avg", "min", "max"]) {
      if (kind in json) {
        node.measure = { kind, path: json[kind], op: json.op, value: json.value };
        break;
      }
    }
  }
  return node;
}

function comparisonJSON(out, node) {
  out.op = node.op;
  if (shapeOf(node.op) !== "none" && node.value !== undefined) out.value = node.value;
  if (node.ic === true || node.ic === false) out.ignore_case = node.ic;
  return out;
}

/** The JSON condition of a model node. */
export function toJSON(node) {
  switch (node.k) {
    case "group":
      return { [node.op]: node.children.map(toJSON) };
    case "not":
      return { not: toJSON(node.child) };
    case "trait":
      return comparisonJSON({ trait: node.path }, node);
    case "prop":
      return comparisonJSON({ property: node.path }, node);
    case "segment": {
      const out = { segment: node.id || "" };
      if (node.tenure !== undefined) out.for_at_least = node.tenure;
      return out;
    }
    case "sequence": {
      const out = { sequence: node.steps.map(stepJSON) };
      windowJSON(out, node.within);
      return out;
    }
    case "raw":
      return node.raw;
    case "event":
      return eventJSON(node);
    default:
      return {};
  }
}

function stepJSON(step) {
  const out = { event: step.event };
  if (step.where.length || step.whereKey) out.where = step.where.map(toJSON);
  return out;
}

function windowJSON(out, within) {
  if (within.mode === "last") out.within = within.duration || "";
  else if (within.mode === "range") {
    const window = {};
    if (within.after) window.after = within.after;
    if (within.before) window.before = within.before;
    out.within = window;
  }
}

function eventJSON(node) {
  const out = stepJSON(node);
  windowJSON(out, node.within);
  if (node.follow) {
    // "then not … within": no measure (SPEC §4.4).
    out.not_followed_by = { ...stepJSON(node.follow), within: node.follow.within ?? "" };
    return out;
  }
  const measure = node.measure;
  if (measure.kind === "count") {
    out.count = { op: measure.op };
    if (measure.value !== undefined) out.count.value = measure.value;
  } else if (measure.kind !== "none") {
    out[measure.kind] = measure.path || "";
    out.op = measure.op;
    if (measure.value !== undefined) out.value = measure.value;
  }
  return out;
}

// -- small DOM helpers ------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  let value;
  for (const [key, item] of Object.entries(attrs)) {
    if (item === undefined || item === null || item === false) continue;
    if (key === "class") element.className = item;
    else if (key === "text") element.textContent = item;
    else if (key === "value") value = item;
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), item);
    else element.setAttribute(key, item === true ? "" : String(item));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) element.append(child);
  }
  if (value !== undefined) element.value = value;
  return element;
}

function button(text, onclick, attrs = {}) {
  return el("button", { type: "button", class: "small", onclick, ...attrs }, text);
}

function select(id, options, value, onchange, attrs = {}) {
  const element = el(
    "select",
    { id, ...attrs, onchange: (event) => onchange(event.target.value) },
    options.map(([key, label]) => el("option", { value: key }, label)),
  );
  const known = options.some(([key]) => key === value);
  if (!known && value !== undefined && value !== null && value !== "") {
    element.append(el("option", { value }, String(value)));
  }
  element.value = value === undefined || value === null ? "" : String(value);
  return element;
}

function field(label, control, { hidden = false, wide = false } = {}) {
  return el(
    "span",
    { class: wide ? "field wide" : "field" },
    el("label", { for: control.id, class: hidden ? "sr-only" : "" }, label),
    control,
  );
}

function numberOrText(text) {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  const number = Number(trimmed);
  return Number.isFinite(number) ? number : trimmed;
}

function splitList(text, vt) {
  const items = text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
  if (!items.length) return undefined;
  if (vt === "number") return items.map(numberOrText);
  if (vt === "bool") return items.map((item) => (item === "true" ? true : item === "false" ? false : item));
  return items;
}

function convertValue(value, vt) {
  const one = (item) => {
    if (vt === "number") return typeof item === "number" ? item : numberOrText(String(item));
    if (vt === "bool") return item === true || item === "true";
    return String(item);
  };
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.map(one) : one(value);
}

function instantParts(value) {
  if (typeof value !== "string" || value === "") return { date: "", time: "" };
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return { date: value, time: "" };
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime())) return { date: "", time: "" };
  const iso = parsed.toISOString();
  return { date: iso.slice(0, 10), time: iso.slice(11, 19) };
}

function instantValue(date, time) {
  if (!date) return undefined;
  if (!time) return date;
  return `${date}T${time.length === 5 ? `${time}:00` : time}Z`;
}

// -- the builder ------------------------------------------------------------------------------

export class ConditionBuilder {
  /**
   * @param {HTMLElement} container where the tree is drawn
   * @param {{onChange: () => void, segmentChoices: () => Array<[string, string]>}} hooks
   */
  constructor(container, hooks) {
    this.container = container;
    this.onChange = hooks.onChange;
    this.segmentChoices = hooks.segmentChoices;
    this.root = newLeaf();
    this.registry = [];
    this.lists = new Map();
    this.focusId = null;
  }

  load(condition) {
    this.root = condition === undefined ? newLeaf() : fromJSON(condition);
    this.render();
  }

  toJSON() {
    return toJSON(this.root);
  }

  /** The id of the first control of the tree (to move the focus there). */
  firstControlId() {
    return this.firstControl(this.root);
  }

  firstControl(node) {
    if (node.k === "group") return idFor(node, "op");
    if (node.k === "not") return idFor(node, "unnot");
    return idFor(node, "type");
  }

  // A value changed: the tree keeps its shape (and the focus its place).
  edited() {
    this.onChange();
  }

  // The shape changed: draw again, then focus `focusId` (or what had the focus).
  restructured(focusId) {
    this.focusId = focusId || (document.activeElement && document.activeElement.id) || null;
    this.render();
    this.onChange();
  }

  render() {
    const focusId = this.focusId;
    this.focusId = null;
    this.registry = [];
    this.lists = new Map();
    const tree = this.renderNode(this.root, "condition");
    this.container.replaceChildren(tree, ...this.lists.values());
    if (focusId) {
      const target = document.getElementById(focusId);
      if (target) target.focus();
    }
  }

  // -- errors ---------------------------------------------------------------------------------

  register(ctx, suffix, input) {
    const path = suffix ? `${ctx.path}.${suffix}` : ctx.path;
    this.registry.push({ path, box: ctx.box, errors: ctx.errors, input });
    if (input) input.setAttribute("aria-describedby", ctx.errors.id);
  }

  clearErrors() {
    for (const entry of this.registry) {
      entry.errors.replaceChildren();
      entry.errors.hidden = true;
      entry.box.classList.remove("invalid");
      if (entry.input) entry.input.removeAttribute("aria-invalid");
    }
  }

  /** Show each error at its node; returns those no node of the tree claims. */
  showErrors(errors) {
    this.clearErrors();
    const unplaced = [];
    for (const error of errors) {
      let best = null;
      for (const entry of this.registry) {
        const p = entry.path;
        const under =
          error.path === p || error.path.startsWith(`${p}.`) || error.path.startsWith(`${p}[`);
        if (under && (best === null || p.length > best.path.length)) best = entry;
      }
      if (best === null) {
        unplaced.push(error);
        continue;
      }
      best.errors.append(el("li", { text: error.message }));
      best.errors.hidden = false;
      best.box.classList.add("invalid");
      if (best.input) best.input.setAttribute("aria-invalid", "true");
    }
    return unplaced;
  }

  // -- tree edits -----------------------------------------------------------------------------

  locate(target, node = this.root) {
    if (node.k === "group") {
      for (let i = 0; i < node.children.length; i += 1) {
        if (node.children[i] === target) return { parent: node, index: i };
        const found = this.locate(target, node.children[i]);
        if (found) return found;
      }
    } else if (node.k === "not") {
      if (node.child === target) return { parent: node, index: 0 };
      return this.locate(target, node.child);
    }
    return null;
  }

  replace(target, replacement) {
    const at = this.locate(target);
    if (at === null) this.root = replacement;
    else if (at.parent.k === "group") at.parent.children[at.index] = replacement;
    else at.parent.child = replacement;
  }

  /** The And / Or buttons: a new condition beside `node`, joined with `op`. */
  combine(node, op) {
    const leaf = newLeaf();
    const at = this.locate(node);
    if (at && at.parent.k === "group" && at.parent.op === op) {
      at.parent.children.splice(at.index + 1, 0, leaf);
    } else {
      this.replace(node, { k: "group", op, children: [node, leaf] });
    }
    this.restructured(idFor(leaf, "type"));
  }

  negate(node) {
    const wrapper = { k: "not", child: node };
    this.replace(node, wrapper);
    this.restructured(idFor(wrapper, "unnot"));
  }

  remove(node) {
    const at = this.locate(node);
    if (at === null) {
      this.root = newLeaf();
      this.restructured(idFor(this.root, "type"));
      return;
    }
    if (at.parent.k === "not") {
      this.remove(at.parent);
      return;
    }
    const group = at.parent;
    group.children.splice(at.index, 1);
    if (group.children.length === 0) {
      this.remove(group);
      return;
    }
    let focus = group.children[Math.min(at.index, group.children.length - 1)];
    if (group.children.length === 1) {
      // A group of one is just that condition.
      [focus] = group.children;
      this.replace(group, focus);
    }
    this.restructured(this.firstControl(focus));
  }

  setType(node, choice) {
    const [kind, key] = choice.split(":");
    let fresh = newLeaf();
    if (kind === "trait") fresh = traitNode(key);
    else if (kind === "event") fresh = eventNode(key);
    else if (kind === "segment") fresh = { k: "segment", id: "" };
    else if (kind === "sequence") fresh = sequenceNode();
    const uid = uidOf(node);
    for (const key of Object.keys(node)) delete node[key];
    Object.assign(node, fresh, { uid });
    this.restructured(idFor(node, "type"));
  }

  // -- drawing ----------------------------------------------------------------------------------

  datalist(key, values) {
    const id = `list-${key.replace(/[^a-z0-9_-]/gi, "-")}`;
    if (!this.lists.has(id)) {
      this.lists.set(id, el("datalist", { id }, values.map((value) => el("option", { value }))));
    }
    return id;
  }

  context(node, path, box) {
    const errors = el("ul", { class: "errors", id: idFor(node, "errors"), hidden: true });
    return { node, path, box, errors };
  }

  renderNode(node, path) {
    if (node.k === "group") return this.renderGroup(node, path);
    if (node.k === "not") return this.renderNot(node, path);
    return this.renderLeaf(node, path);
  }

  actions(node, what) {
    return el(
      "div",
      { class: "node-actions" },
      button("And", () => this.combine(node, "and"), {
        title: `Add a condition that must hold too (And) next to this ${what}`,
      }),
      button("Or", () => this.combine(node, "or"), {
        title: `Add a condition that may hold instead (Or) next to this ${what}`,
      }),
      button("Not", () => this.negate(node), {
        title: `Match the profiles that do not match this ${what}`,
      }),
      button("Remove", () => this.remove(node), {
        class: "small quiet",
        title: `Remove this ${what}`,
        "aria-label": `Remove ${what}`,
      }),
    );
  }

  renderGroup(node, path) {
    const word = node.op === "and" ? "And" : "Or";
    const box = el("div", {
      class: `node group group-${node.op}`,
      "data-path": path,
      role: "group",
      "aria-label": node.op === "and" ? "All of these conditions" : "Any of these conditions",
    });
    const ctx = this.context(node, path, box);
    const opSelect = select(
      idFor(node, "op"),
      [
        ["and", "all of these conditions (And)"],
        ["or", "any of these conditions (Or)"],
      ],
      node.op,
      (value) => {
        node.op = value;
        this.restructured();
      },
    );
    const children = el("ol", { class: "children" });
    node.children.forEach((child, index) => {
      const item = el("li", { class: "child" });
      if (index > 0) item.append(el("span", { class: "joiner", text: word }));
      item.append(this.renderNode(child, `${path}.${node.op}[${index}]`));
      children.append(item);
    });
    const other = node.op === "and" ? "or" : "and";
    const add = el(
      "div",
      { class: "group-add" },
      button(`Add condition (${word})`, () => {
        const leaf = newLeaf();
        node.children.push(leaf);
        this.restructured(idFor(leaf, "type"));
      }),
      button(`Add group (${other === "and" ? "And" : "Or"})`, () => {
        const leaf = newLeaf();
        node.children.push({ k: "group", op: other, children: [leaf] });
        this.restructured(idFor(leaf, "type"));
      }),
    );
    box.append(
      el("div", { class: "group-head" }, field("Profiles match", opSelect)),
      ctx.errors,
      children,
      add,
      this.actions(node, "group"),
    );
    this.register(ctx, "", null);
    this.register(ctx, node.op, opSelect);
    return box;
  }

  renderNot(node, path) {
    const box = el("div", {
      class: "node not",
      "data-path": path,
      role: "group",
      "aria-label": "Not: profiles that do not match",
    });
    const ctx = this.context(node, path, box);
    const unwrap = button(
      "Remove Not",
      () => {
        this.replace(node, node.child);
        this.restructured(this.firstControl(node.child));
      },
      { id: idFor(node, "unnot") },
    );
    box.append(
      el(
        "div",
        { class: "not-head" },
        el("strong", { class: "badge" }, "Not"),
        el("span", {}, " profiles that do not match:"),
        unwrap,
      ),
      ctx.errors,
      this.renderNode(node.child, `${path}.not`),
      this.actions(node, "negated condition"),
    );
    this.register(ctx, "", null);
    return box;
  }

  typeSelect(ctx) {
    const node = ctx.node;
    const traits = Object.entries(TRAITS).map(([key, meta]) => [`trait:${key}`, meta.label]);
    const events = Object.entries(ACTIVITIES).map(([key, meta]) => [`event:${key}`, meta.label]);
    let value = "";
    if (node.k === "trait") value = `trait:${node.type}`;
    else if (node.k === "event") value = `event:${node.type}`;
    else if (node.k === "segment") value = "segment";
    else if (node.k === "sequence") value = "sequence";
    const element = el(
      "select",
      {
        id: idFor(node, "type"),
        class: "type",
        onchange: (event) => this.setType(node, event.target.value),
      },
      el("option", { value: "" }, "Choose a condition type…"),
      el(
        "optgroup",
        { label: "Profile characteristics" },
        traits.map(([key, label]) => el("option", { value: key }, label)),
      ),
      el(
        "optgroup",
        { label: "Customer activity" },
        events.map(([key, label]) => el("option", { value: key }, label)),
        el("option", { value: "sequence" }, "Activities in order (a sequence)"),
      ),
      el(
        "optgroup",
        { label: "Segments" },
        el("option", { value: "segment" }, "Member of another segment"),
      ),
    );
    element.value = value;
    return field("Condition type", element, { hidden: true });
  }

  renderLeaf(node, path) {
    const box = el("div", {
      class: `node leaf leaf-${node.k}`,
      "data-path": path,
      role: "group",
      "aria-label": "Condition",
    });
    const ctx = this.context(node, path, box);
    const row = el("div", { class: "leaf-row" }, this.typeSelect(ctx));
    box.append(row);
    this.register(ctx, "", null);
    if (node.k === "trait") this.traitControls(ctx, row);
    else if (node.k === "event") box.append(this.eventControls(ctx, row));
    else if (node.k === "segment") this.segmentControls(ctx, row);
    else if (node.k === "sequence") box.append(this.sequenceControls(ctx, row));
    else if (node.k === "raw") row.append(el("code", { text: JSON.stringify(node.raw) }));
    else row.append(el("span", { class: "hint", text: "Choose what to look at first." }));
    box.append(ctx.errors, this.actions(node, "condition"));
    return box;
  }

  traitControls(ctx, row) {
    const node = ctx.node;
    const meta = TRAITS[node.type] || TRAITS.custom;
    if (node.type === "custom") {
      const paths = Object.values(TRAITS)
        .map((trait) => trait.path)
        .filter(Boolean);
      const input = el("input", {
        id: idFor(node, "path"),
        type: "text",
        value: node.path,
        list: this.datalist("trait-paths", ["custom.", ...paths]),
        placeholder: "custom.plan",
        autocomplete: "off",
        oninput: (event) => {
          node.path = event.target.value;
          this.edited();
        },
      });
      row.append(field("Property", input));
      this.register(ctx, "trait", input);
    }
    this.comparison(ctx, row, meta.kind, meta);
  }

  /** Operator, value type (where free), value and "ignore case" of a trait or property. */
  comparison(ctx, row, kind, meta) {
    const node = ctx.node;
    const ops = KIND_OPERATORS[kind];
    const opSelect = select(
      idFor(node, "op"),
      ops.map((op) => [op, OPERATORS[op].label]),
      node.op,
      (value) => {
        if (shapeOf(value) !== shapeOf(node.op)) node.value = undefined;
        node.op = value;
        this.restructured();
      },
    );
    row.append(field("Operator", opSelect, { hidden: true }));
    this.register(ctx, "op", opSelect);
    const shape = shapeOf(node.op);
    if (kind === "any" && (shape === "scalar" || shape === "list")) {
      const typeSelect = select(idFor(node, "vt"), VALUE_TYPES, node.vt, (value) => {
        node.value = convertValue(node.value, value);
        node.vt = value;
        this.restructured();
      });
      row.append(field("Value type", typeSelect, { hidden: true }));
    }
    const vt = kind === "any" ? node.vt : kind === "number" ? "number" : "text";
    const widget = this.valueWidget(ctx, {
      id: idFor(node, "value"),
      shape,
      kind,
      vt,
      meta,
      get: () => node.value,
      set: (value) => {
        node.value = value;
      },
    });
    if (widget) row.append(widget);
    const textual = kind === "text" || (kind === "any" && node.vt === "text");
    if (TEXT_OPERATORS.has(node.op) && textual) {
      const box = el("input", {
        id: idFor(node, "ic"),
        type: "checkbox",
        onchange: (event) => {
          if (event.target.checked) node.ic = true;
          else if (node.icFalse) node.ic = false;
          else delete node.ic;
          this.edited();
        },
      });
      box.checked = node.ic === true;
      row.append(el("span", { class: "field check" }, box, el("label", { for: box.id }, "ignore case")));
      this.register(ctx, "ignore_case", box);
    }
  }

  /**
   * The input(s) of a value: `shape` from the operator; `kind`/`vt` say what a single value is.
   * spec: {id, shape, kind, vt, meta, get, set, integer, label}
   */
  valueWidget(ctx, spec) {
    const label = spec.label || "Value";
    const changed = (value) => {
      spec.set(value);
      this.edited();
    };
    const number = (id, current, text) => {
      const input = el("input", {
        id,
        type: "number",
        step: spec.integer ? "1" : "any",
        min: spec.integer ? "0" : undefined,
        class: "number",
        value: typeof current === "number" ? String(current) : "",
      });
      return { input, text };
    };
    let element = null;
    let first = null;
    switch (spec.shape) {
      case "none":
        return null;
      case "scalar":
      case "list":
        [element, first] = this.valueInputs(spec, label, changed);
        break;
      case "number": {
        const { input } = number(spec.id, spec.get());
        input.addEventListener("input", () => changed(numberOrText(input.value)));
        element = field(label, input, { hidden: true });
        first = input;
        break;
      }
      case "range": {
        const current = Array.isArray(spec.get()) ? spec.get() : [];
        const low = number(`${spec.id}-low`, current[0]).input;
        const high = number(`${spec.id}-high`, current[1]).input;
        const update = () => {
          const lo = numberOrText(low.value);
          const hi = numberOrText(high.value);
          changed(lo === undefined && hi === undefined ? undefined : [lo ?? null, hi ?? null]);
        };
        low.addEventListener("input", update);
        high.addEventListener("input", update);
        element = el("span", { class: "range" }, field("From", low), field("to", high));
        first = low;
        break;
      }
      case "text": {
        const input = el("input", {
          id: spec.id,
          type: "text",
          value: typeof spec.get() === "string" ? spec.get() : "",
          oninput: (event) => changed(event.target.value),
        });
        element = field(label, input, { hidden: true });
        first = input;
        break;
      }
      case "instant":
        [element, first] = this.instantInputs(spec.id, label, spec.get(), changed);
        break;
      case "duration":
        [element, first] = this.durationInputs(spec.id, label, spec.get(), changed);
        break;
      case "days":
        [element, first] = this.durationInputs(spec.id, label, spec.get(), changed, DAY_UNITS);
        break;
      case "point": {
        const current = spec.get() && typeof spec.get() === "object" ? spec.get() : {};
        const inputs = ["lat", "lon", "km"].map((key) => number(`${spec.id}-${key}`, current[key]).input);
        const update = () => {
          const place = {};
          ["lat", "lon", "km"].forEach((key, index) => {
            const value = numberOrText(inputs[index].value);
            if (value !== undefined) place[key] = value;
          });
          changed(Object.keys(place).length ? place : undefined);
        };
        for (const input of inputs) input.addEventListener("input", update);
        element = el(
          "span",
          { class: "range" },
          field("latitude", inputs[0]),
          field("longitude", inputs[1]),
          field("within km", inputs[2]),
        );
        first = inputs[0];
        break;
      }
      default:
        return null;
    }
    this.register(ctx, spec.registerAs || "value", first);
    return element;
  }

  /** Inputs of one value or a list of values, fitting the kind (known values become selects). */
  valueInputs(spec, label, changed) {
    const list = spec.shape === "list";
    const current = spec.get();
    const meta = spec.meta || {};
    if (spec.kind === "enum" || spec.vt === "bool") {
      const options =
        spec.kind === "enum"
          ? meta.options
          : [
              ["true", "true"],
              ["false", "false"],
            ];
      const values = (Array.isArray(current) ? current : current === undefined ? [] : [current]).map(String);
      const input = el(
        "select",
        { id: spec.id, multiple: list, size: list ? String(Math.min(6, options.length)) : undefined },
        list ? [] : el("option", { value: "" }, "Choose…"),
        options.map(([key, text]) => el("option", { value: key }, key === text ? text : `${text} (${key})`)),
      );
      for (const option of input.options) option.selected = values.includes(option.value);
      if (!list && !values.length) input.value = "";
      input.addEventListener("change", () => {
        const chosen = Array.from(input.selectedOptions, (option) => option.value).filter(Boolean);
        const typed = spec.vt === "bool" ? chosen.map((value) => value === "true") : chosen;
        changed(list ? (typed.length ? typed : undefined) : typed[0]);
      });
      return [field(list ? `${label}s (choose one or more)` : label, input, { hidden: true }), input];
    }
    if (list) {
      const input = el("input", {
        id: spec.id,
        type: "text",
        class: "wide",
        placeholder: spec.vt === "number" ? "1, 2, 3" : "one, two, three",
        value: Array.isArray(current) ? current.join(", ") : "",
        oninput: (event) => changed(splitList(event.target.value, spec.vt)),
      });
      return [field(`${label}s, separated by commas`, input, { hidden: true }), input];
    }
    if (spec.vt === "number") {
      const input = el("input", {
        id: spec.id,
        type: "number",
        step: "any",
        class: "number",
        value: typeof current === "number" ? String(current) : "",
        oninput: (event) => changed(numberOrText(event.target.value)),
      });
      return [field(label, input, { hidden: true }), input];
    }
    if (spec.kind === "date") {
      const input = el("input", {
        id: spec.id,
        type: "date",
        value: typeof current === "string" ? current : "",
        oninput: (event) => changed(event.target.value || undefined),
      });
      return [field(label, input, { hidden: true }), input];
    }
    const input = el("input", {
      id: spec.id,
      type: "text",
      value: current === undefined ? "" : String(current),
      list: meta.suggest ? this.datalist(`suggest-${meta.path}`, meta.suggest) : undefined,
      autocomplete: "off",
      oninput: (event) => changed(event.target.value),
    });
    return [field(label, input, { hidden: true }), input];
  }

  instantInputs(id, label, current, changed) {
    const parts = instantParts(current);
    const date = el("input", { id: `${id}-date`, type: "date", value: parts.date });
    const time = el("input", { id: `${id}-time`, type: "time", step: "1", value: parts.time });
    const update = () => changed(instantValue(date.value, time.value));
    date.addEventListener("input", update);
    time.addEventListener("input", update);
    const element = el(
      "span",
      { class: "instant" },
      field(`${label} date`, date, { hidden: true }),
      field(`${label} time (UTC, optional)`, time, { hidden: true }),
    );
    return [element, date];
  }

  durationInputs(id, label, current, changed, units = DURATION_UNITS) {
    const match = /^(\d+)([smhdw])$/.exec(typeof current === "string" ? current : "");
    const amount = el("input", {
      id,
      type: "number",
      min: "1",
      step: "1",
      class: "number",
      value: match ? match[1] : "",
    });
    const max = units === DAY_UNITS ? "366" : undefined;
    if (max) amount.max = max;
    const unit = select(`${id}-unit`, units, match ? match[2] : "d", () => update());
    const update = () => changed(amount.value === "" ? undefined : `${amount.value}${unit.value}`);
    amount.addEventListener("input", update);
    const element = el(
      "span",
      { class: "duration" },
      field(`${label}: how many`, amount, { hidden: true }),
      field(`${label}: unit`, unit, { hidden: true }),
    );
    return [element, amount];
  }

  segmentControls(ctx, row) {
    const node = ctx.node;
    const choices = this.segmentChoices();
    const input = select(idFor(node, "segment"), [["", "Choose a segment…"], ...choices], node.id, (value) => {
      node.id = value;
      this.edited();
    });
    row.append(field("Segment", input, { hidden: true }));
    this.register(ctx, "segment", input);
    const tenure = el("input", {
      id: idFor(node, "tenure"),
      type: "checkbox",
      onchange: (event) => {
        if (event.target.checked) node.tenure = "30d";
        else delete node.tenure;
        this.restructured();
      },
    });
    tenure.checked = node.tenure !== undefined;
    row.append(el("span", { class: "field check" }, tenure, el("label", { for: tenure.id }, "for at least")));
    if (node.tenure !== undefined) {
      const [element, first] = this.durationInputs(idFor(node, "tenure-for"), "Member for at least", node.tenure, (value) => {
        node.tenure = value;
        this.edited();
      });
      row.append(element);
      this.register(ctx, "for_at_least", first);
    }
  }

  /** The event type of a step (or of "then not"): a select, and a name for a custom action. */
  activityInputs(ctx, step, suffix, label) {
    const choices = Object.entries(ACTIVITIES).map(([key, meta]) => [key, meta.label]);
    const kind = select(idFor(step, `${suffix}-type`), choices, step.type, (value) => {
      step.type = value;
      step.event = value === "custom" ? "custom." : value;
      this.restructured();
    });
    const parts = [field(label, kind, { hidden: true })];
    if (step.type === "custom") {
      const input = el("input", {
        id: idFor(step, `${suffix}-custom`),
        type: "text",
        placeholder: "name, e.g. referred_friend",
        value: step.event.startsWith("custom.") ? step.event.slice(7) : step.event,
        autocomplete: "off",
        oninput: (event) => {
          step.event = `custom.${event.target.value}`;
          this.edited();
        },
      });
      parts.push(el("span", { class: "prefix", "aria-hidden": "true", text: "custom." }), field(`${label}: action name`, input, { hidden: true }));
    }
    this.register(ctx, suffix ? `${suffix}.event` : "event", kind);
    return parts;
  }

  /** Property filters of a step, an event or a "then not" (paths under `path`). */
  whereControls(step, path, label = "Add property filter") {
    const activity = ACTIVITIES[step.type] || ACTIVITIES.custom;
    const whereBox = el("div", { class: "where" });
    step.where.forEach((item, index) => whereBox.append(this.renderProperty(step, item, `${path}.where[${index}]`, activity)));
    whereBox.append(
      button(label, () => {
        const item = { k: "prop", path: "", op: "eq", value: undefined, vt: "text" };
        step.where.push(item);
        this.restructured(idFor(item, "path"));
      }),
    );
    return whereBox;
  }

  /** A sequence: ordered steps, each an activity with its filters, and one window. */
  sequenceControls(ctx, row) {
    const node = ctx.node;
    row.append(el("span", { class: "hint", text: "in this order:" }));
    const details = el("div", { class: "event-details sequence" });
    const list = el("ol", { class: "steps" });
    node.steps.forEach((step, index) => {
      const stepPath = `${ctx.path}.sequence[${index}]`;
      const item = el("li", { class: "node step", "data-path": stepPath, role: "group", "aria-label": `Sequence step ${index + 1}` });
      const stepCtx = this.context(step, stepPath, item);
      this.register(stepCtx, "", null);
      const stepRow = el("div", { class: "leaf-row" }, el("span", { class: "hint", text: index === 0 ? "first" : "then" }));
      stepRow.append(...this.activityInputs(stepCtx, step, "", `Step ${index + 1}`));
      if (node.steps.length > 2) {
        stepRow.append(
          button(
            `Remove step ${index + 1}`,
            () => {
              node.steps.splice(index, 1);
              this.restructured(idFor(node, "add-step"));
            },
            { class: "small quiet" },
          ),
        );
      }
      item.append(stepRow, this.whereControls(step, stepPath), stepCtx.errors);
      list.append(item);
    });
    details.append(list);
    const add = button("Add step", () => {
      const step = stepNode("order.purchased");
      node.steps.push(step);
      this.restructured(idFor(step, "-type"));
    });
    add.id = idFor(node, "add-step");
    add.disabled = node.steps.length >= 10;
    details.append(add);
    this.register(ctx, "sequence", null);
    details.append(this.windowControls(ctx, node));
    return details;
  }

  /** "When": any time, in the last D, or between dates (of an event or a sequence). */
  windowControls(ctx, node) {
    const within = node.within;
    const windowRow = el("div", { class: "detail-row" });
    const windowSelect = select(idFor(node, "within"), WINDOWS, within.mode, (value) => {
      node.within = value === "last" ? { mode: "last", duration: "30d" } : { mode: value };
      this.restructured();
    });
    windowRow.append(field("When", windowSelect));
    let windowInput = windowSelect;
    if (within.mode === "last") {
      const [element, first] = this.durationInputs(idFor(node, "within-last"), "In the last", within.duration, (value) => {
        within.duration = value;
        this.edited();
      });
      windowRow.append(element);
      windowInput = first;
    } else if (within.mode === "range") {
      const [after, afterInput] = this.instantInputs(idFor(node, "after"), "From", within.after, (value) => {
        within.after = value;
        this.edited();
      });
      const [before, beforeInput] = this.instantInputs(idFor(node, "before"), "Until", within.before, (value) => {
        within.before = value;
        this.edited();
      });
      windowRow.append(el("span", { class: "hint", text: "from" }), after, el("span", { class: "hint", text: "until (not including)" }), before);
      this.register(ctx, "within.after", afterInput);
      this.register(ctx, "within.before", beforeInput);
      windowInput = afterInput;
    }
    this.register(ctx, "within", windowInput);
    return windowRow;
  }

  /** "Then not … within": the event that must not follow, its filters and how soon. */
  followControls(ctx, node) {
    const follow = node.follow;
    const path = `${ctx.path}.not_followed_by`;
    const box = el("div", { class: "node follow", "data-path": path, role: "group", "aria-label": "Then not" });
    const followCtx = this.context(follow, path, box);
    this.register(followCtx, "", null);
    const followRow = el("div", { class: "leaf-row" }, el("span", { class: "hint", text: "then not" }));
    followRow.append(...this.activityInputs(followCtx, follow, "", "Then not"));
    const [element, first] = this.durationInputs(idFor(follow, "within"), "within", follow.within, (value) => {
      follow.within = value;
      this.edited();
    });
    followRow.append(el("span", { class: "hint", text: "within" }), element);
    this.register(followCtx, "within", first);
    followRow.append(
      button(
        "Remove “then not”",
        () => {
          node.follow = null;
          this.restructured(idFor(node, "follow"));
        },
        { class: "small quiet" },
      ),
    );
    box.append(followRow, this.whereControls(follow, path), followCtx.errors);
    return box;
  }

  eventControls(ctx, row) {
    const node = ctx.node;
    const activity = ACTIVITIES[node.type] || ACTIVITIES.custom;
    const details = el("div", { class: "event-details" });
    if (node.type === "custom") {
      const input = el("input", {
        id: idFor(node, "event"),
        type: "text",
        placeholder: "name, e.g. referred_friend",
        pattern: "[a-z0-9_.\\-]{1,64}",
        value: node.event.startsWith("custom.") ? node.event.slice(7) : node.event,
        autocomplete: "off",
        oninput: (event) => {
          node.event = `custom.${event.target.value}`;
          this.edited();
        },
      });
      row.append(el("span", { class: "prefix", "aria-hidden": "true", text: "custom." }), field("Action name", input, { hidden: true }));
      this.register(ctx, "event", input);
    } else {
      this.register(ctx, "event", null);
    }

    // How often / how much (none with "then not": SPEC §4.4).
    const measure = node.measure;
    const measureRow = el("div", { class: "detail-row" });
    if (node.follow) measureRow.hidden = true;
    const measureSelect = select(idFor(node, "measure"), MEASURES, measure.kind, (value) => {
      if (value === "none") node.measure = { kind: "none" };
      else if (value === "count") node.measure = { kind: "count", op: "gte", value: 1 };
      else {
        const path = measure.kind !== "none" && measure.kind !== "count" ? measure.path : activity.numbers[0];
        node.measure = { kind: value, path: path || "", op: "gt", value: undefined };
      }
      this.restructured();
    });
    measureRow.append(field("How often or how much", measureSelect));
    if (measure.kind !== "none") {
      const where = measure.kind === "count" ? "count" : "";
      if (measure.kind !== "count") {
        const pathInput = el("input", {
          id: idFor(node, "measure-path"),
          type: "text",
          value: measure.path || "",
          placeholder: "amount",
          list: this.datalist(`numbers-${node.type}`, activity.numbers),
          autocomplete: "off",
          oninput: (event) => {
            measure.path = event.target.value;
            this.edited();
          },
        });
        measureRow.append(field("of the property", pathInput, { hidden: true }));
        this.register(ctx, measure.kind, pathInput);
      }
      const opSelect = select(
        idFor(node, "measure-op"),
        MEASURE_OPERATORS.map((op) => [op, OPERATORS[op].label]),
        measure.op,
        (value) => {
          if ((value === "between") !== (measure.op === "between")) measure.value = undefined;
          measure.op = value;
          this.restructured();
        },
      );
      measureRow.append(field("Comparison", opSelect, { hidden: true }));
      this.register(ctx, where ? `${where}.op` : "op", opSelect);
      const widget = this.valueWidget(ctx, {
        id: idFor(node, "measure-value"),
        shape: measure.op === "between" ? "range" : "number",
        kind: "number",
        vt: "number",
        integer: measure.kind === "count",
        label: measure.kind === "count" ? "Times" : "Amount",
        registerAs: where ? `${where}.value` : "value",
        get: () => measure.value,
        set: (value) => {
          measure.value = value;
        },
      });
      measureRow.append(widget);
      if (measure.kind === "count") {
        measureRow.append(el("span", { class: "hint", text: "times" }));
        this.register(ctx, "count", opSelect);
      }
    }
    details.append(measureRow);

    // When.
    details.append(this.windowControls(ctx, node));

    // Where: property conditions on the events.
    details.append(this.whereControls(node, ctx.path));

    // Then not … within (abandoned cart).
    if (node.follow) details.append(this.followControls(ctx, node));
    else {
      const add = button("Then not… (did not follow within)", () => {
        node.follow = followNode();
        node.measure = { kind: "none" };
        this.restructured(idFor(node.follow, "-type"));
      });
      add.id = idFor(node, "follow");
      details.append(add);
    }
    return details;
  }

  renderProperty(event, node, path, activity) {
    const box = el("div", { class: "node prop", "data-path": path, role: "group", "aria-label": "Property filter" });
    const ctx = this.context(node, path, box);
    const row = el("div", { class: "leaf-row" }, el("span", { class: "hint", text: "where" }));
    const pathInput = el("input", {
      id: idFor(node, "path"),
      type: "text",
      value: node.path || "",
      placeholder: activity.properties[0] || "property",
      list: this.datalist(`props-${event.type}`, activity.properties),
      autocomplete: "off",
      oninput: (e) => {
        node.path = e.target.value;
        this.edited();
      },
      onchange: () => {
        // A known numeric property compares numbers, unless a value is typed already.
        const vt = NUMERIC_PROPERTIES.has(node.path) ? "number" : node.vt;
        if (vt !== node.vt && node.value === undefined) {
          node.vt = vt;
          this.restructured();
        }
      },
    });
    row.append(field("Property", pathInput, { hidden: true }));
    this.register(ctx, "", null);
    this.register(ctx, "property", pathInput);
    this.comparison(ctx, row, "any", {});
    row.append(
      button(
        "Remove filter",
        () => {
          const index = event.where.indexOf(node);
          event.where.splice(index, 1);
          this.restructured(idFor(event, "within"));
        },
        { class: "small quiet" },
      ),
    );
    box.append(row, ctx.errors);
    return box;
  }
}
