// The Export form of the members pane: every member of the selected segment as a file
// (GET api/segments/{id}/members.csv|.jsonl, docs/api.md), with the traits asked for.

import { authHeaders } from "./api.js";

const $ = (id) => document.getElementById(id);

/** Wire the form; `selected()` names the segment shown in the members pane. */
export function initExport(selected) {
  $("members-export").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = selected();
    if (id) download(id).catch(() => {});
  });
}

async function download(id) {
  const button = $("export-members");
  const status = $("export-status");
  const format = $("export-format").value;
  const traits = $("export-traits")
    .value.split(",")
    .map((path) => path.trim())
    .filter(Boolean)
    .join(",");
  const query = traits ? `?${new URLSearchParams({ traits })}` : "";
  button.disabled = true;
  status.classList.remove("bad");
  status.textContent = "Exporting…";
  try {
    const response = await fetch(
      `api/segments/${encodeURIComponent(id)}/members.${format}${query}`,
      { headers: authHeaders(), cache: "no-store" },
    );
    if (!response.ok) {
      let message = `the worker answered HTTP ${response.status}`;
      try {
        message = (await response.json()).message || message;
      } catch {
        // not JSON: keep the status
      }
      throw new Error(message);
    }
    // A cut-off transfer rejects here: no partial file is offered.
    const blob = await response.blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${id}-members.${format}`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    const rows = await countRows(blob, format);
    status.textContent = `Exported ${rows.toLocaleString("en")} ${rows === 1 ? "member" : "members"}.`;
  } catch (error) {
    status.classList.add("bad");
    status.textContent = `Export failed: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

async function countRows(blob, format) {
  // Records, not lines: a quoted CSV field may hold line breaks.
  const text = await blob.text();
  if (format === "jsonl") return text.split("\n").filter(Boolean).length;
  let rows = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (c === "\n" && !quoted) rows += 1;
  }
  return Math.max(0, rows - 1); // the header line
}
