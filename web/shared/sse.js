// Server-sent events read from a fetch response body: EventSource can't POST or send an Authorization header.
// Yields {event, id, data} per dispatched event (data: the joined data lines); comments (heartbeats) are skipped.

export async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let name = "";
  let data = [];
  let id = null;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      // A lone "\r" at the end may be the first half of "\r\n": it stays in the buffer until the next chunk.
      const lines = buf.split(/\r\n|\r(?!$)|\n/);
      buf = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (data.length) yield { event: name || "message", id, data: data.join("\n") };
          name = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const at = line.indexOf(":");
        const field = at < 0 ? line : line.slice(0, at);
        let value = at < 0 ? "" : line.slice(at + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
        else if (field === "id" && !value.includes("\0")) id = value;
      }
    }
  } finally {
    reader.releaseLock();
  }
}
