/* A job's page: GET /v1/jobs/{id}/timeline, drawn once, and again every 2 s until the job ends. */
"use strict";

(() => {
  const { el, figure, fmt, table, replace } = SY;
  const jobId = decodeURIComponent(location.pathname.split("/").pop());
  const FINAL = new Set(["succeeded", "failed", "canceled"]);

  function fact(label, node) {
    return el("div", { class: "fact" }, [el("div", { class: "stat-label", text: label }), el("div", {}, [node])]);
  }

  function drawFacts(job) {
    const cache = job.cache && job.cache.hit ? `${job.cache.hit} hit` : "miss";
    replace("facts", el("div", { class: "facts" }, [
      fact("tier", el("span", { "data-figure": "job.tier", text: job.tier })),
      fact("priority", job.priority),
      fact("model", el("span", { "data-figure": "job.model", text: job.model ? `${job.model} (${job.provider})` : "–" })),
      fact("attempts", figure("job.attempts", job.attempts, fmt.int)),
      fact("latency", figure("job.latency_ms", job.latency_ms, fmt.ms)),
      fact("cost", figure("job.cost_usd", job.cost_usd, fmt.usd)),
      fact("cache", el("span", { "data-figure": "job.cache", text: cache })),
      fact("error", job.error ? el("code", { "data-figure": "job.error_code", text: job.error.code }) : "none"),
    ]), job.error ? el("p", { class: "error-text", "data-figure": "job.error_message", text: job.error.message }) : "");
  }

  function drawTimeline(job) {
    const start = new Date(job.events[0] && job.events[0].at).getTime();
    const items = job.events.map((event) => {
      const offset = event.at ? `+${((new Date(event.at).getTime() - start) / 1000).toFixed(3)} s` : "";
      const detail = event.kind === "attempt" ? attemptDetail(event.detail) : "";
      return el("li", { class: "event " + event.kind, "data-event": event.kind }, [
        el("span", { class: "event-time", title: fmt.dateTime(event.at), text: event.at ? fmt.time(event.at) : "–" }),
        el("span", { class: "event-offset muted", text: offset }),
        el("span", { class: "event-title", text: event.title }),
        detail,
      ]);
    });
    replace("timeline", el("ol", { class: "timeline" }, items));
  }

  function attemptDetail(entry) {
    const parts = [`${fmt.ms(entry.latency_ms)}`];
    if (entry.prompt_tokens !== undefined) parts.push(`${entry.prompt_tokens} + ${entry.completion_tokens} tokens`);
    if (entry.cost_usd !== undefined) parts.push(fmt.usd(entry.cost_usd));
    return el("span", { class: "event-detail muted", "data-attempt-latency": String(entry.latency_ms), text: parts.join(" · ") });
  }

  function drawDeliveries(job) {
    replace("deliveries", table(
      [{ title: "event", cell: (d) => d.event_type },
       { title: "to", cell: (d) => el("span", { class: "clip", title: d.url, text: d.url }) },
       { title: "status", cell: (d) => el("span", { class: "chip " + d.status, text: d.status }) },
       { title: "attempts", numeric: true, cell: (d) => figure("delivery." + d.id + ".attempts", d.attempts, fmt.int) },
       { title: "last answer", cell: (d) => d.last_status_code ? String(d.last_status_code) : (d.last_error || "–") },
       { title: "last attempt", cell: (d) => fmt.time(d.last_attempt_at) }],
      job.deliveries, "No webhook for this job.", "deliveries"));
  }

  function drawContent(id, value, shown, empty) {
    if (!shown) return replace(id, el("p", { class: "empty", text: "Another tenant's content is not shown to the platform admin." }));
    if (value === null || value === undefined) return replace(id, el("p", { class: "empty", text: empty }));
    replace(id, el("pre", { class: "json", "data-content": id, text: JSON.stringify(value, null, 2) }));
  }

  function draw(job) {
    document.getElementById("job-id").textContent = job.id;
    const status = document.getElementById("job-status");
    status.textContent = job.status;
    status.className = "pill " + job.status;
    document.title = `Switchyard job ${job.id} (${job.status})`;
    drawFacts(job);
    drawTimeline(job);
    drawDeliveries(job);
    drawContent("request", job.request, job.content_shown, "No request.");
    drawContent("result", job.result, job.content_shown, job.status === "failed" ? "No result: the job failed." : "No result yet.");
    document.body.dataset.loaded = "1";
  }

  async function load() {
    if (!SY.key()) return SY.askForKey("", load);
    try {
      const job = await SY.getJson("/v1/jobs/" + encodeURIComponent(jobId) + "/timeline");
      draw(job);
      SY.showError(null);
      if (!FINAL.has(job.status)) setTimeout(load, 2000);
    } catch (error) {
      if (error.status === 401) {
        sessionStorage.removeItem("switchyard.apiKey");
        return SY.askForKey(`That key was refused (${error.code}): ${error.message}`, load);
      }
      SY.showError(error);
    }
  }

  document.getElementById("sign-out").addEventListener("click", SY.signOut);
  load();
})();
