// The Audience page: the segment list (polled), the members pane and the segment editor.

import { api, getToken, setToken } from "./api.js";
import { ConditionBuilder } from "./builder.js";
import { initDestinations } from "./destinations.js";
import { initExport } from "./export.js";
import { initInsight, memberItem, showSegmentInsight } from "./insight.js";

const POLL_MS = 1500;
const PAGE_SIZE = 50;
const PREVIEW_DELAY_MS = 400;
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);

const state = {
  segments: [], // rows of GET /api/segments
  selected: null, // the segment whose members are shown
  cursors: [null], // the cursor of every members page visited; the last is the current page
  page: null, // the current members page
  editor: null, // {mode: "new" | "edit", id}
  idTouched: false, // the id was typed, not made from the name
  previewSeq: 0,
  previewTimer: null,
  returnFocus: null,
};

const builder = new ConditionBuilder($("builder"), {
  onChange: () => schedulePreview(),
  segmentChoices: () =>
    state.segments
      .filter((row) => !state.editor || row.id !== state.editor.id)
      .map((row) => [row.id, `${row.name} (${row.id})`]),
});

// -- the segment list -------------------------------------------------------------------------

function editIcon() {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "18");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", "M4 20h4L19 9l-4-4L4 16v4zM13.5 6.5l4 4");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "2");
  path.setAttribute("fill", "none");
  path.setAttribute("stroke-linejoin", "round");
  svg.append(path);
  return svg;
}

function makeItem(id) {
  const item = document.createElement("li");
  item.className = "segment";
  item.dataset.id = id;
  const title = document.createElement("button");
  title.type = "button";
  title.className = "segment-title";
  title.addEventListener("click", () => selectSegment(id));
  const edit = document.createElement("button");
  edit.type = "button";
  edit.className = "icon edit";
  edit.title = "Edit segment";
  edit.append(editIcon());
  edit.addEventListener("click", () => editSegment(id, edit));
  const meta = document.createElement("p");
  meta.className = "segment-meta";
  const count = document.createElement("span");
  count.className = "count";
  const status = document.createElement("span");
  status.className = "status";
  meta.append(count, status);
  const row = document.createElement("div");
  row.className = "segment-row";
  row.append(title, edit);
  item.append(row, meta);
  return item;
}

function updateItem(item, row) {
  const [title, edit] = item.querySelectorAll("button");
  if (title.textContent !== row.name) title.textContent = row.name;
  edit.setAttribute("aria-label", `Edit ${row.name}`);
  const selected = row.id === state.selected;
  item.classList.toggle("selected", selected);
  if (selected) title.setAttribute("aria-current", "true");
  else title.removeAttribute("aria-current");
  const count = item.querySelector(".count");
  const text = `${row.members.toLocaleString("en")} ${row.members === 1 ? "member" : "members"}`;
  if (count.textContent !== text) count.textContent = text;
  const status = item.querySelector(".status");
  status.textContent = row.status === "ready" ? "ready" : "building…";
  status.className = `status status-${row.status}`;
  item.title = `${row.id}, version ${row.version}`;
}

function renderList() {
  const list = $("segment-list");
  const rows = [...state.segments].sort(
    (a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id),
  );
  $("segments-empty").hidden = rows.length > 0;
  const existing = new Map(Array.from(list.children, (item) => [item.dataset.id, item]));
  const items = rows.map((row) => {
    const item = existing.get(row.id) || makeItem(row.id);
    updateItem(item, row);
    return item;
  });
  const same =
    items.length === list.children.length && items.every((item, i) => list.children[i] === item);
  // Moving nodes would take the focus away: only when the set or the order changed.
  if (!same) list.replaceChildren(...items);
}

function setConnection(error) {
  const element = $("connection");
  let text = "";
  if (error && error.status === 401) {
    // Every API call needs the token once the worker has one: reads too.
    text = getToken()
      ? "The worker refuses this API token: check the one entered above."
      : "The worker needs an API token: enter it in “API token” above.";
  } else if (error) {
    text = `Cannot reach the worker (${error.message}); retrying…`;
  }
  element.textContent = text;
  element.classList.toggle("bad", Boolean(error));
}

async function refreshList() {
  const data = await api.list();
  state.segments = data.segments;
  setConnection(null);
  renderList();
}

async function poll() {
  try {
    if (!document.hidden) {
      await refreshList();
      if (state.selected) await refreshMembers();
    }
  } catch (error) {
    setConnection(error);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

// -- the members pane -------------------------------------------------------------------------

function selectSegment(id) {
  if (state.selected !== id) {
    state.selected = id;
    state.cursors = [null];
    state.page = null;
  }
  renderList();
  renderMembers();
  showSegmentInsight(id);
  refreshMembers().catch(() => {});
}

async function refreshMembers() {
  const id = state.selected;
  if (!id) return;
  const cursor = state.cursors[state.cursors.length - 1];
  try {
    const page = await api.members(id, cursor, PAGE_SIZE);
    if (id !== state.selected || cursor !== state.cursors[state.cursors.length - 1]) return;
    state.page = page;
  } catch (error) {
    if (id !== state.selected) return;
    if (error.status === 404) {
      state.page = null;
    } else if (error.status === 422 && cursor) {
      state.cursors = [null]; // a stale cursor (the partition count changed): start again
    } else {
      throw error;
    }
  }
  renderMembers();
}

function renderMembers() {
  const id = state.selected;
  $("members-export").hidden = !id;
  const row = state.segments.find((segment) => segment.id === id);
  const list = $("members-list");
  const pager = $("members-pager");
  if (!id) {
    $("members-heading").textContent = "Members";
    $("members-summary").textContent = "Select a segment on the left to see its customer profiles.";
    list.replaceChildren();
    pager.hidden = true;
    return;
  }
  $("members-heading").textContent = row ? row.name : id;
  let summary = "Loading members…";
  if (row) {
    const count = `${row.members.toLocaleString("en")} ${row.members === 1 ? "member" : "members"}`;
    summary =
      row.status === "ready"
        ? `${count} · ready · version ${row.version}`
        : `${count} so far · building: evaluating every profile for version ${row.version}…`;
  } else if (state.page === null) {
    summary = "This segment no longer exists.";
  }
  const summaryElement = $("members-summary");
  if (summaryElement.textContent !== summary) summaryElement.textContent = summary;
  const members = state.page ? state.page.members : [];
  const key = members.map((member) => member.profile_id).join("\n");
  if (list.dataset.key !== key) {
    list.dataset.key = key;
    list.start = (state.cursors.length - 1) * PAGE_SIZE + 1;
    list.replaceChildren(
      ...members.map(memberItem),
    );
  }
  const first = state.cursors.length === 1;
  const last = !state.page || !state.page.next_cursor;
  pager.hidden = first && last;
  $("members-prev").disabled = first;
  $("members-next").disabled = last;
  $("members-page").textContent = `Page ${state.cursors.length}`;
}

function turnPage(step) {
  if (step > 0 && state.page && state.page.next_cursor) state.cursors.push(state.page.next_cursor);
  else if (step < 0 && state.cursors.length > 1) state.cursors.pop();
  else return;
  state.page = null;
  refreshMembers().catch((error) => setConnection(error));
}

// -- the editor ---------------------------------------------------------------------------------

function slug(text) {
  return text
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 64);
}

function openEditor(mode, segment) {
  state.editor = { mode, id: segment ? segment.id : "" };
  const editor = $("editor");
  editor.hidden = false;
  $("layout").classList.add("editing");
  $("editor-heading").textContent = mode === "new" ? "New segment" : "Edit segment";
  $("seg-name").value = segment ? segment.name : "";
  $("seg-id").value = segment ? segment.id : "";
  $("seg-id").readOnly = mode === "edit";
  $("seg-description").value = segment && segment.description ? segment.description : "";
  state.idTouched = mode === "edit";
  $("delete-open").hidden = mode === "new";
  setSaveStatus("");
  builder.load(segment ? segment.condition : undefined);
  showErrors([]);
  schedulePreview(0);
  const focus = mode === "new" ? document.getElementById(builder.firstControlId()) : $("seg-name");
  if (focus) focus.focus();
}

function closeEditor() {
  state.editor = null;
  clearTimeout(state.previewTimer);
  state.previewSeq += 1;
  $("editor").hidden = true;
  $("layout").classList.remove("editing");
  const back = state.returnFocus && document.contains(state.returnFocus) ? state.returnFocus : $("new-segment");
  state.returnFocus = null;
  back.focus();
}

async function editSegment(id, opener) {
  selectSegment(id);
  try {
    const segment = await api.get(id);
    state.returnFocus = opener;
    openEditor("edit", segment);
  } catch (error) {
    setConnection(error);
  }
}

function currentId() {
  if (!state.editor) return "";
  return state.editor.mode === "edit" ? state.editor.id : $("seg-id").value.trim();
}

/** The definition being edited; for a preview, with stand-ins for a missing id or name. */
function draft(forPreview) {
  const description = $("seg-description").value;
  const definition = {
    id: currentId(),
    name: $("seg-name").value,
    description: description.trim() ? description : null,
    condition: builder.toJSON(),
  };
  if (forPreview) {
    if (!definition.id) definition.id = "draft";
    if (!definition.name.trim()) definition.name = "Draft";
  }
  return definition;
}

const FIELD_ERRORS = { id: "seg-id", name: "seg-name", description: "seg-description" };

function showErrors(errors) {
  for (const input of Object.values(FIELD_ERRORS)) {
    $(`${input}-errors`).replaceChildren();
    $(`${input}-errors`).hidden = true;
    $(input).removeAttribute("aria-invalid");
  }
  const general = $("editor-errors");
  general.replaceChildren();
  const rest = builder.showErrors(
    errors.filter((error) => error.path === "condition" || error.path.startsWith("condition.")),
  );
  for (const error of errors) {
    const input = FIELD_ERRORS[error.path];
    if (input) {
      const item = document.createElement("li");
      item.textContent = error.message;
      $(`${input}-errors`).append(item);
      $(`${input}-errors`).hidden = false;
      $(input).setAttribute("aria-invalid", "true");
    } else if (!error.path.startsWith("condition")) {
      rest.push(error);
    }
  }
  for (const error of rest) {
    const item = document.createElement("li");
    item.textContent = error.path ? `${error.path}: ${error.message}` : error.message;
    general.append(item);
  }
  general.hidden = rest.length === 0;
}

function schedulePreview(delay = PREVIEW_DELAY_MS) {
  $("condition-json").textContent = JSON.stringify(builder.toJSON(), null, 2);
  clearTimeout(state.previewTimer);
  state.previewTimer = setTimeout(runPreview, delay);
}

async function runPreview() {
  if (!state.editor) return;
  state.previewSeq += 1;
  const seq = state.previewSeq;
  const editing = state.editor.mode === "edit";
  $("preview").classList.add("busy");
  try {
    const result = await api.preview(draft(true), 10);
    if (seq !== state.previewSeq) return;
    showErrors([]);
    const profiles = result.profiles.toLocaleString("en");
    $("preview-matching").textContent = `Matching now: ${result.matching.toLocaleString("en")} of ${profiles} profiles.`;
    const changes = editing && result.edit && result.enter !== null;
    $("preview-changes").hidden = !changes;
    if (changes) {
      $("preview-enter").textContent = String(result.enter);
      $("preview-leave").textContent = String(result.leave);
    }
    const note = !editing && result.edit ? " A segment with this id exists already: choose another id." : "";
    $("preview-sample").textContent =
      (result.sample.length ? `For example: ${result.sample.join(", ")}.` : "") + note;
  } catch (error) {
    if (seq !== state.previewSeq) return;
    $("preview-changes").hidden = true;
    $("preview-sample").textContent = "";
    if (error.status === 422) {
      showErrors(error.errors);
      const count = error.errors.length || 1;
      $("preview-matching").textContent = `No preview: ${count} ${count === 1 ? "problem is" : "problems are"} marked in the form.`;
    } else if (error.status === 429) {
      // The worker runs as many previews as it allows: try again shortly.
      $("preview-matching").textContent = "No preview yet: the worker is busy; retrying…";
      schedulePreview(1000);
    } else if (error.status === 401) {
      $("preview-matching").textContent = "No preview: the worker needs an API token (enter it at the top).";
    } else {
      $("preview-matching").textContent = `No preview now: ${error.message}.`;
    }
  } finally {
    if (seq === state.previewSeq) $("preview").classList.remove("busy");
  }
}

function setSaveStatus(text, bad = false) {
  const element = $("save-status");
  element.textContent = text;
  element.classList.toggle("bad", bad);
}

const OUTCOMES = {
  created: "Segment created",
  changed: "Saved as a new version",
  renamed: "Name and description saved",
  unchanged: "Nothing to save: no change",
};

async function save() {
  const editor = state.editor;
  if (!editor) return;
  const definition = draft(false);
  setSaveStatus("Saving…");
  $("save").disabled = true;
  try {
    let result;
    if (editor.mode === "new") {
      result = await api.create(definition);
    } else {
      const { id, ...body } = definition;
      result = await api.replace(id, body);
    }
    showErrors([]);
    editor.mode = "edit";
    editor.id = result.id;
    $("seg-id").readOnly = true;
    $("editor-heading").textContent = "Edit segment";
    $("delete-open").hidden = false;
    const refill = result.outcome === "created" || result.outcome === "changed";
    setSaveStatus(
      `${OUTCOMES[result.outcome] || "Saved"} (version ${result.version}).` +
        (refill ? " Profiles are being evaluated: members appear in a few seconds." : ""),
    );
    await refreshList().catch((error) => setConnection(error));
    selectSegment(result.id);
    schedulePreview(0);
  } catch (error) {
    if (error.status === 422) {
      showErrors(error.errors);
      setSaveStatus("Not saved: fix the problems marked in the form.", true);
      const invalid = $("editor").querySelector('[aria-invalid="true"]');
      if (invalid) invalid.focus();
    } else if (error.status === 409) {
      showErrors([{ path: "id", message: "A segment with this id exists already: choose another id." }]);
      setSaveStatus("Not saved: the id is taken.", true);
      $("seg-id").focus();
    } else if (error.status === 401) {
      setSaveStatus("Not saved: the worker needs an API token. Enter it in “API token” at the top.", true);
      $("api-token").focus();
    } else {
      setSaveStatus(`Not saved: ${error.message}.`, true);
    }
  } finally {
    $("save").disabled = false;
  }
}

// -- deleting -----------------------------------------------------------------------------------

function openDelete() {
  if (!state.editor || state.editor.mode !== "edit") return;
  $("delete-name").textContent = $("seg-name").value || state.editor.id;
  $("delete-error").textContent = "";
  $("delete-dialog").showModal();
}

async function confirmDelete() {
  const id = state.editor && state.editor.id;
  if (!id) return;
  $("delete-confirm").disabled = true;
  try {
    await api.remove(id);
    $("delete-dialog").close();
    state.returnFocus = null;
    closeEditor();
    if (state.selected === id) {
      state.selected = null;
      state.page = null;
    }
    await refreshList().catch((error) => setConnection(error));
    renderMembers();
    $("members-summary").textContent = `Segment “${id}” deleted; its customer profiles are kept.`;
  } catch (error) {
    $("delete-error").textContent =
      error.status === 401
        ? "Not deleted: the worker needs an API token (enter it at the top of the page)."
        : `Not deleted: ${error.message}.`;
  } finally {
    $("delete-confirm").disabled = false;
  }
}

// -- wiring -----------------------------------------------------------------------------------

function start() {
  const token = $("api-token");
  token.value = getToken();
  token.addEventListener("input", () => {
    setToken(token.value.trim());
    // Show at once what the new token opens (the list, the members, the preview).
    refreshList()
      .then(() => (state.selected ? refreshMembers() : undefined))
      .catch((error) => setConnection(error));
    if (state.editor) schedulePreview();
  });
  $("new-segment").addEventListener("click", () => {
    state.returnFocus = $("new-segment");
    openEditor("new", null);
  });
  $("editor-close").addEventListener("click", closeEditor);
  $("save").addEventListener("click", save);
  $("delete-open").addEventListener("click", openDelete);
  $("delete-cancel").addEventListener("click", () => $("delete-dialog").close());
  $("delete-confirm").addEventListener("click", confirmDelete);
  $("delete-dialog").addEventListener("close", () => {
    if (state.editor) $("delete-open").focus();
  });
  initDestinations(() => state.segments);
  initExport(() => state.selected);
  initInsight(
    () => state.segments,
    () => {
      $("members-list").dataset.key = "";
      renderMembers();
    },
  );
  $("members-prev").addEventListener("click", () => turnPage(-1));
  $("members-next").addEventListener("click", () => turnPage(1));
  $("seg-name").addEventListener("input", () => {
    if (state.editor && state.editor.mode === "new" && !state.idTouched) {
      $("seg-id").value = slug($("seg-name").value);
    }
    schedulePreview();
  });
  $("seg-id").addEventListener("input", () => {
    state.idTouched = $("seg-id").value !== "";
    schedulePreview();
  });
  $("seg-description").addEventListener("input", () => schedulePreview());
  $("editor").addEventListener("keydown", (event) => {
    if (event.key === "s" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      save();
    }
  });
  poll();
}

start();
