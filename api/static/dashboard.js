/* The dashboard page: polls GET /v1/dashboard every 2 s and draws every panel. */
"use strict";

(() => {
  const { el, figure, fmt, table, bar, replace } = SY;
  const POLL_MS = 2000;
  let timer = null;

  function stat(label, node, note) {
    return el("div", { class: "stat" }, [
      el("div", { class: "stat-label", text: label }),
      el("div", { class: "stat-value" }, [node]),
      note ? el("div", { class: "stat-note" }, [note]) : "",
    ]);
  }

  /* An inline SVG sparkline of jobs ended per minute (no library, no external asset). */
  function sparkline(values, name) {
    const width = 240, height = 44, ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("class", "spark");
    svg.setAttribute("data-spark", name);
    if (values.length < 2) return svg;
    const top = Math.max(...values, 1);
    const x = (i) => (i / (values.length - 1)) * width;
    const y = (v) => height - 3 - (v / top) * (height - 8);
    const points = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    const area = document.createElementNS(ns, "polygon");
    area.setAttribute("points", `0,${height} ${points.join(" ")} ${width},${height}`);
    area.setAttribute("class", "spark-area");
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("class", "spark-line");
    const title = document.createElementNS(ns, "title");
    title.textContent = "jobs ended per minute, last " + values.length + " min: " + values.join(", ");
    svg.append(title, area, line);
    return svg;
  }

  function drawThroughput(t) {
    const statuses = Object.entries(t.ended_by_status).map(([status, n]) =>
      el("span", { class: "chip " + status }, [status + " ", figure("throughput.ended_by_status." + status, n, fmt.int)])
    );
    replace("throughput",
      el("div", { class: "stats" }, [
        stat("jobs ended / s", figure("throughput.ended_per_s", t.ended_per_s, fmt.perSecond),
          el("span", {}, [figure("throughput.ended", t.ended, fmt.int), ` in the last ${t.window_s} s`])),
        stat("submitted / s", figure("throughput.submitted_per_s", t.submitted_per_s, fmt.perSecond),
          el("span", {}, [figure("throughput.submitted", t.submitted, fmt.int), ` in the last ${t.window_s} s`])),
      ]),
      sparkline(t.ended_per_minute, "ended"),
      el("div", { class: "spark-axis muted" }, [el("span", { text: t.ended_per_minute.length + " min ago" }), el("span", { text: "jobs ended / min" }), el("span", { text: "now" })]),
      el("div", { class: "chips" }, statuses.length ? statuses : [el("span", { class: "empty", text: "No job ended in the last minute." })]),
    );
  }

  function drawErrors(calls, jobs) {
    const codes = Object.entries(jobs.by_error_code).sort((a, b) => b[1] - a[1]);
    replace("errors",
      el("div", { class: "stats" }, [
        stat("job failure rate", figure("jobs.failure_rate", jobs.failure_rate, fmt.rate),
          el("span", {}, [figure("jobs.failed", jobs.failed, fmt.int), " of ", figure("jobs.ended", jobs.ended, fmt.int), " jobs"])),
        stat("call error rate", figure("calls.error_rate", calls.error_rate, fmt.rate),
          el("span", {}, [figure("calls.errors", calls.errors, fmt.int), " of ", figure("calls.calls", calls.calls, fmt.int), " calls"])),
        stat("provider 429 rate", figure("calls.rate_limited_rate", calls.rate_limited_rate, fmt.rate),
          el("span", {}, [figure("calls.rate_limited", calls.rate_limited, fmt.int), " calls"])),
      ]),
      el("p", { class: "muted small", text: `Last ${calls.window_s / 60} min.` }),
      table(
        [{ title: "error code", cell: (r) => el("code", { text: r[0] }) },
         { title: "jobs", numeric: true, cell: (r) => figure("jobs.by_error_code." + r[0], r[1], fmt.int) }],
        codes, "No failed job in this window.", "error-codes"),
    );
  }

  function drawCache(c) {
    const kinds = Object.entries(c.lookups).map(([kind, k]) => ({ kind, ...k }));
    replace("cache",
      el("div", { class: "stats" }, [
        stat("hit rate today", figure("cache.hit_rate_today", c.hit_rate_today, fmt.rate),
          el("span", {}, [figure("cache.hits_today", c.hits_today, fmt.int), " of ", figure("cache.jobs_today", c.jobs_today, fmt.int), " jobs"])),
        stat("saved today", figure("cache.savings_today_usd", c.savings_today_usd, fmt.usd),
          el("span", {}, [figure("cache.saved_usd", c.saved_usd, fmt.usd), " all time"])),
      ]),
      table(
        [{ title: "lookups", cell: (r) => r.kind },
         { title: "hits", numeric: true, cell: (r) => figure(`cache.lookups.${r.kind}.hits`, r.hits, fmt.int) },
         { title: "misses", numeric: true, cell: (r) => figure(`cache.lookups.${r.kind}.misses`, r.misses, fmt.int) },
         { title: "hit rate", numeric: true, cell: (r) => figure(`cache.lookups.${r.kind}.hit_rate`, r.hit_rate, fmt.rate) }],
        kinds, "No lookup yet.", "cache-kinds"),
    );
  }

  function drawSpend(s) {
    const budgets = s.budgets.map((b) => {
      const share = b.limit_usd ? b.spent_usd / b.limit_usd : (b.limit_tokens ? b.spent_tokens / b.limit_tokens : 0);
      const level = share >= 1 ? "bad" : share >= 0.8 ? "warn" : "ok";
      const limit = b.limit_usd === null ? fmt.int(b.limit_tokens) + " tokens" : fmt.usd(b.limit_usd);
      const spent = b.limit_usd === null ? fmt.int(b.spent_tokens) + " tokens" : null;
      return el("li", { "data-row": "budgets" }, [
        el("div", { class: "item-title" }, [
          el("span", { text: (b.name || b.id) + " (" + b.period + ")" }),
          el("span", { class: "muted" }, [spent || figure("spend.budget." + b.id + ".spent_usd", b.spent_usd, fmt.usd), " of " + limit]),
        ]),
        bar(share, level),
      ]);
    });
    replace("spend",
      el("div", { class: "stats" }, [
        stat("spent today (UTC)", figure("spend.today_usd", s.today_usd, fmt.usd),
          el("span", {}, [figure("spend.calls_today", s.calls_today, fmt.int), " provider calls"])),
      ]),
      budgets.length ? el("ul", { class: "items" }, budgets) : el("p", { class: "empty", "data-empty": "budgets", text: "No budget set." }),
    );
  }

  function drawQueues(q) {
    if (q.tiers) {
      replace("queues", table(
        [{ title: "tier", cell: (t) => t.tier },
         { title: "live", numeric: true, cell: (t) => figure(`queues.${t.tier}.live`, t.queued.live || 0, fmt.int) },
         { title: "batch", numeric: true, cell: (t) => figure(`queues.${t.tier}.batch`, t.queued.batch || 0, fmt.int) },
         { title: "precompute", numeric: true, cell: (t) => figure(`queues.${t.tier}.precompute`, t.queued.precompute || 0, fmt.int) },
         { title: "drain time", numeric: true, cell: (t) => figure(`queues.${t.tier}.total_drain_s`, t.total_drain_s, fmt.seconds) },
         { title: "state", cell: (t) => el("span", { class: "chip " + (t.full ? "failed" : t.live_saturated ? "warn" : "succeeded"),
             text: t.full ? "full" : t.live_saturated ? "saturated" : "ok" }) }],
        q.tiers, "No tier configured.", "tiers"));
      return;
    }
    replace("queues",
      el("p", { class: "muted small", text: "Your tenant's jobs not yet ended (every tier's queue needs an admin key)." }),
      table(
        [{ title: "tier", cell: (t) => t.tier },
         { title: "queued live", numeric: true, cell: (t) => figure(`backlog.${t.tier}.live`, t.queued.live || 0, fmt.int) },
         { title: "queued batch", numeric: true, cell: (t) => figure(`backlog.${t.tier}.batch`, t.queued.batch || 0, fmt.int) },
         { title: "running", numeric: true, cell: (t) => figure(`backlog.${t.tier}.running`, t.running, fmt.int) }],
        q.backlog, "Nothing queued or running.", "backlog"));
  }

  function drawLatency(calls) {
    replace("latency",
      el("p", { class: "muted small", text: `Provider calls of the last ${calls.window_s / 60} min` +
        (calls.capped ? ` (the newest ${fmt.int(calls.sample_limit)}).` : ".") }),
      table(
        [{ title: "model", cell: (m) => m.model },
         { title: "provider", cell: (m) => m.provider },
         { title: "calls", numeric: true, cell: (m) => figure(`latency.${m.model}.calls`, m.calls, fmt.int) },
         { title: "p50", numeric: true, cell: (m) => figure(`latency.${m.model}.p50_ms`, m.p50_ms, fmt.ms) },
         { title: "p95", numeric: true, cell: (m) => figure(`latency.${m.model}.p95_ms`, m.p95_ms, fmt.ms) },
         { title: "p99", numeric: true, cell: (m) => figure(`latency.${m.model}.p99_ms`, m.p99_ms, fmt.ms) },
         { title: "errors", numeric: true, cell: (m) => figure(`latency.${m.model}.errors`, m.errors, fmt.int) },
         { title: "429s", numeric: true, cell: (m) => figure(`latency.${m.model}.rate_limited`, m.rate_limited, fmt.int) }],
        calls.models, "No provider call in this window.", "latency"));
  }

  function drawLimiter(l) {
    const t = l.tenant;
    const used = t.rpm ? t.submissions_used / t.rpm : 0;
    const running = t.max_running_jobs ? t.running / t.max_running_jobs : 0;
    const parts = [el("div", { class: "stats" }, [
      stat("your submissions", el("span", {}, [figure("limiter.tenant.submissions_used", t.submissions_used, fmt.int),
        " / ", t.rpm === null ? "∞" : fmt.int(t.rpm)]), bar(used, used >= 0.8 ? "warn" : "ok")),
      stat("your running jobs", el("span", {}, [figure("limiter.tenant.running", t.running, fmt.int),
        " / ", t.max_running_jobs === null ? "∞" : fmt.int(t.max_running_jobs)]), bar(running, running >= 0.8 ? "warn" : "ok")),
    ])];
    if (l.models) {
      parts.push(table(
        [{ title: "model", cell: (m) => m.model },
         { title: "provider", cell: (m) => m.provider },
         { title: "requests left", numeric: true, cell: (m) => figure(`limiter.${m.model}.requests_headroom`, m.requests_headroom, fmt.int) },
         { title: "tokens left", numeric: true, cell: (m) => figure(`limiter.${m.model}.tokens_headroom`, m.tokens_headroom, fmt.int) },
         { title: "in flight", numeric: true, cell: (m) => figure(`limiter.${m.model}.in_flight`, m.in_flight, fmt.int) },
         { title: "share", numeric: true, cell: (m) => fmt.rate(m.factor) },
         { title: "paused", numeric: true, cell: (m) => m.paused_s > 0 ? el("span", { class: "chip failed", text: fmt.seconds(m.paused_s) }) : "no" }],
        l.models, "No model has a rate limit configured.", "limiter-models"));
    }
    replace("limiter", ...parts);
  }

  function drawWebhooks(w) {
    replace("webhooks", el("div", { class: "stats" }, [
      stat("dead letters", figure("webhooks.dead_letters", w.dead_letters, fmt.int),
        w.dead_letters ? "deliveries that gave up: GET /v1/webhook-deliveries?status=failed" : "every delivery arrived or is still trying"),
    ]));
    document.getElementById("panel-webhooks").classList.toggle("alert", w.dead_letters > 0);
  }

  function drawKillSwitches(switches) {
    document.getElementById("panel-kill-switches").classList.toggle("alert", switches.length > 0);
    if (!switches.length) return replace("kill-switches", el("p", { class: "empty", "data-empty": "kill-switches", text: "No kill switch active." }));
    replace("kill-switches", el("ul", { class: "items" }, switches.map((k) =>
      el("li", { "data-row": "kill-switches" }, [
        el("div", { class: "item-title" }, [el("span", { class: "chip failed", text: k.scope }), " ", el("code", { text: k.value || "everything" })]),
        el("div", { class: "muted small", text: `${k.tenant_id ? "tenant " + k.tenant_id : "every tenant"} · since ${fmt.time(k.created_at)}` }),
        k.reason ? el("div", { class: "small", text: k.reason }) : "",
      ]))));
  }

  function drawFailed(jobs) {
    replace("failed", table(
      [{ title: "job", cell: (j) => el("a", { href: "/dashboard/jobs/" + j.id, "data-job-link": j.id, text: j.id }) },
       { title: "tier", cell: (j) => j.tier },
       { title: "model", cell: (j) => j.model || "–" },
       { title: "error", cell: (j) => el("code", { "data-error-code": j.error_code || "", text: j.error_code || "–" }) },
       { title: "message", cell: (j) => el("span", { class: "clip", title: j.error_message || "", text: j.error_message || "" }) },
       { title: "ended", cell: (j) => fmt.time(j.finished_at) }],
      jobs, "No failed job among the recent ones.", "failed-jobs"));
  }

  function draw(data) {
    const scope = data.scope === "platform" ? "platform: every tenant" : "tenant " + data.tenant_id;
    const header = document.getElementById("scope");
    header.textContent = scope + (data.global_figures ? " · global queues" : "");
    header.dataset.scope = data.scope;
    document.getElementById("updated").textContent = "updated " + fmt.time(data.generated_at) + ` (${data.took_ms} ms)`;
    document.body.dataset.generatedAt = data.generated_at;
    drawThroughput(data.throughput);
    drawErrors(data.calls, data.jobs);
    drawCache(data.cache);
    drawSpend(data.spend);
    drawQueues(data.queues);
    drawLatency(data.calls);
    drawLimiter(data.limiter);
    drawWebhooks(data.webhooks);
    drawKillSwitches(data.kill_switches);
    drawFailed(data.failed_jobs);
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
  }

  async function refresh() {
    const live = document.getElementById("live");
    try {
      draw(await SY.getJson("/v1/dashboard"));
      SY.showError(null);
      live.className = "dot on";
      return true;
    } catch (error) {
      live.className = "dot off";
      if (error.status === 401) {
        sessionStorage.removeItem("switchyard.apiKey");
        SY.askForKey(`That key was refused (${error.code}): ${error.message}`, poll);
        return false;
      }
      SY.showError(error);
      return true;
    }
  }

  /* One refresh at a time; the next is scheduled when this one is done (none while hidden). */
  let busy = false;
  async function poll() {
    clearTimeout(timer);
    if (!SY.key()) return SY.askForKey("", poll);
    if (busy) return;
    busy = true;
    const again = await refresh();
    busy = false;
    if (again && !document.hidden) timer = setTimeout(poll, POLL_MS);
  }

  document.getElementById("sign-out").addEventListener("click", SY.signOut);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
  poll();
})();
