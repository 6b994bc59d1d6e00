// CSV exports: the API needs the key in a header, so the file is fetched, then saved from a blob.
import { ApiError, key } from "./api.js";
import { h } from "./dom.js";
import { act } from "./page.js";

async function download(path, filename) {
  let res;
  try {
    res = await fetch(path, { headers: { authorization: `Bearer ${key.get() ?? ""}` }, cache: "no-store" });
  } catch {
    throw new ApiError(
      0,
      "unreachable",
      `Cannot reach leadpush at ${location.origin}: is the server running?`,
    );
  }
  if (!res.ok) {
    const body = await res.json().catch(() => undefined);
    throw new ApiError(
      res.status,
      body?.error?.code ?? `http_${res.status}`,
      body?.error?.message ?? `leadpush answered HTTP ${res.status}`,
    );
  }
  const url = URL.createObjectURL(await res.blob());
  const a = h("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** "Export CSV" of the list `path()` names (the current filter), saved as `filename`. */
export const exportButton = (path, filename) =>
  h(
    "button",
    {
      type: "button",
      class: "secondary",
      "data-export": filename,
      onclick: () => void act(() => download(path(), filename)),
    },
    "Export CSV",
  );
