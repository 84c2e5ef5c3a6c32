// The destinations panel: webhook destinations listed, added, changed and removed
// (docs/destinations.md). Secrets are references (a variable or file name), never values.

import { destinationsApi } from "./api.js";

const $ = (id) => document.getElementById(id);

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function setStatus(text, bad = false) {
  const element = $("destinations-status");
  element.textContent = text;
  element.classList.toggle("bad", bad);
}

function explain(error, verb) {
  if (error.status === 401) return `Not ${verb}: enter the API token at the top of the page.`;
  return `Not ${verb}: ${error.message}.`;
}

function showErrors(errors) {
  const list = $("destination-errors");
  list.replaceChildren(
    ...errors.map((problem) => {
      const item = document.createElement("li");
      item.textContent = problem.path ? `${problem.path}: ${problem.message}` : problem.message;
      return item;
    }),
  );
  list.hidden = errors.length === 0;
}

function fillForm(row) {
  $("dest-id").value = row.id;
  $("dest-url").value = row.url;
  $("dest-all").checked = !row.segments;
  for (const option of $("dest-segments").options) {
    option.selected = Boolean(row.segments && row.segments.includes(option.value));
  }
  $("dest-segments").disabled = !row.segments;
  $("dest-entered").checked = row.transitions.includes("entered");
  $("dest-left").checked = row.transitions.includes("left");
  $("dest-max-events").value = String(row.batch.max_events);
  $("dest-linger").value = String(row.batch.max_linger_ms);
  const kind = "env" in row.secret ? "env" : "file";
  $("dest-secret-kind").value = kind;
  $("dest-secret-name").value = row.secret[kind];
  $("dest-url").focus();
}

function renderRows(rows, refresh) {
  $("destination-list").replaceChildren(
    ...rows.map((row) => {
      const tr = document.createElement("tr");
      tr.dataset.id = row.id;
      const segments = row.segments ? row.segments.join(", ") : "all";
      tr.append(cell(row.id), cell(row.url), cell(segments), cell(row.transitions.join(", ")));
      const actions = document.createElement("td");
      const edit = document.createElement("button");
      edit.type = "button";
      edit.className = "small";
      edit.textContent = "Edit";
      edit.setAttribute("aria-label", `Edit destination ${row.id}`);
      edit.addEventListener("click", () => fillForm(row));
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "small danger";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove destination ${row.id}`);
      remove.addEventListener("click", async () => {
        remove.disabled = true;
        try {
          await destinationsApi.remove(row.id);
          setStatus(`Destination “${row.id}” removed; delivery to it stops.`);
          await refresh();
        } catch (error) {
          setStatus(explain(error, "removed"), true);
          remove.disabled = false;
        }
      });
      actions.append(edit, remove);
      tr.append(actions);
      return tr;
    }),
  );
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell("No destinations yet.");
    td.colSpan = 5;
    td.className = "hint";
    tr.append(td);
    $("destination-list").append(tr);
  }
}

function formBody() {
  const transitions = [];
  if ($("dest-entered").checked) transitions.push("entered");
  if ($("dest-left").checked) transitions.push("left");
  const segments = $("dest-all").checked
    ? null
    : Array.from($("dest-segments").selectedOptions, (option) => option.value);
  const number = (id) => {
    const text = $(id).value.trim();
    return text === "" ? undefined : Number(text);
  };
  return {
    url: $("dest-url").value.trim(),
    segments,
    transitions,
    batch: { max_events: number("dest-max-events"), max_linger_ms: number("dest-linger") },
    secret: { [$("dest-secret-kind").value]: $("dest-secret-name").value.trim() },
  };
}

export function initDestinations(segments) {
  const dialog = $("destinations-dialog");

  async function refresh() {
    try {
      const data = await destinationsApi.list();
      renderRows(data.destinations, refresh);
    } catch (error) {
      renderRows([], refresh);
      setStatus(explain(error, "listed"), true);
    }
  }

  function fillSegments() {
    const select = $("dest-segments");
    const chosen = new Set(Array.from(select.selectedOptions, (option) => option.value));
    select.replaceChildren(
      ...segments().map((row) => {
        const option = document.createElement("option");
        option.value = row.id;
        option.textContent = `${row.name} (${row.id})`;
        option.selected = chosen.has(row.id);
        return option;
      }),
    );
  }

  $("destinations-open").addEventListener("click", () => {
    setStatus("");
    showErrors([]);
    fillSegments();
    dialog.showModal();
    refresh();
  });
  $("destinations-close").addEventListener("click", () => dialog.close());
  $("dest-all").addEventListener("change", () => {
    $("dest-segments").disabled = $("dest-all").checked;
    fillSegments(); // segments may have come in since the panel opened
  });
  $("destination-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = $("dest-id").value.trim();
    showErrors([]);
    if (!id) {
      showErrors([{ path: "id", message: "is required" }]);
      return;
    }
    const save = $("destination-save");
    save.disabled = true;
    try {
      const saved = await destinationsApi.put(id, formBody());
      const what = { created: "created", changed: "changed", unchanged: "unchanged" };
      setStatus(`Destination “${saved.id}” ${what[saved.outcome]} (version ${saved.version}).`);
      await refresh();
    } catch (error) {
      showErrors(error.errors.length ? error.errors : [{ path: "", message: error.message }]);
      setStatus(explain(error, "saved"), true);
    } finally {
      save.disabled = false;
    }
  });
}
