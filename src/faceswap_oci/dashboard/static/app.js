// The faceswap-oci dashboard: plain browser JavaScript over the dashboard's JSON API and its
// server-sent events; charts with uPlot (vendored into the wheel, nothing fetched at run time).
"use strict";
(function () {
  const fmt = {
    num(v, digits) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); },
    dur(s) {
      if (s === null || s === undefined) return "–";
      s = Math.round(s);
      const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
      return h ? `${h}h${String(m).padStart(2, "0")}m` : m ? `${m}m${String(r).padStart(2, "0")}s` : `${r}s`;
    },
    time(t) { return t ? new Date(t * 1000).toLocaleString() : "–"; },
    usd(v) { return v === null || v === undefined ? "–" : `$${Number(v).toFixed(2)}`; },
    iter(row) {
      if (row.iteration === null || row.iteration === undefined) return "–";
      return row.target_iterations ? `${row.iteration} / ${row.target_iterations}` : `${row.iteration}`;
    },
  };

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function jobRow(row) {
    const tr = el("tr", { "data-job": row.name });
    const link = el("a", { href: `/job/${encodeURIComponent(row.name)}` }, row.name);
    const first = el("td"); first.appendChild(link); tr.appendChild(first);
    const cells = [
      row.target, row.state, row.phase || "–", fmt.iter(row), fmt.num(row.loss_a, 5),
      fmt.num(row.loss_b, 5), fmt.num(row.it_per_s, 2), fmt.dur(row.eta_s), fmt.usd(row.cost_usd),
      fmt.time(row.updated),
    ];
    cells.forEach((text, i) => {
      const td = el("td", i === 1 ? { class: `state-${row.state}` } : {}, text);
      tr.appendChild(td);
    });
    return tr;
  }

  function renderJobs(rows) {
    const body = document.querySelector("#jobs tbody");
    body.replaceChildren(...rows.map(jobRow));
    document.getElementById("empty").hidden = rows.length > 0;
  }

  async function jobList() {
    const data = await (await fetch("/api/jobs")).json();
    document.getElementById("root").textContent = data.state_root;
    renderJobs(data.jobs);
    const source = new EventSource("/api/stream");
    source.addEventListener("jobs", (e) => renderJobs(JSON.parse(e.data)));
  }

  // job page -------------------------------------------------------------------------------
  function renderSummary(s) {
    const cards = [
      ["state", s.state], ["phase", s.phase || "–"], ["iteration", fmt.iter(s)],
      ["loss A", fmt.num(s.loss_a, 5)], ["loss B", fmt.num(s.loss_b, 5)],
      ["it/s", fmt.num(s.it_per_s, 2)], ["ETA", fmt.dur(s.eta_s)], ["cost so far", fmt.usd(s.cost_usd)],
      ["target", s.target], ["updated", fmt.time(s.updated)],
    ];
    document.getElementById("summary").replaceChildren(...cards.map(([k, v]) => {
      const card = el("div", { class: "card", "data-field": k });
      card.appendChild(el("span", { class: "dim" }, k));
      card.appendChild(el("b", k === "state" ? { class: `state-${v}` } : {}, String(v)));
      return card;
    }));
  }

  function renderTimeline(items) {
    const longest = Math.max(1, ...items.map((i) => i.duration_s || 0));
    document.getElementById("timeline").replaceChildren(...items.map((i) => {
      const row = el("div", { class: `bar ${i.status}`, "data-phase": i.phase });
      row.appendChild(el("span", { class: "name" }, i.phase));
      const fill = el("span", { class: "fill" });
      fill.style.width = `${Math.round(200 * (i.duration_s || 0) / longest)}px`;
      row.appendChild(fill);
      row.appendChild(el("span", { class: "dim" },
        i.status === "skipped" ? "skipped" : `${fmt.dur(i.duration_s)} ${i.status}`));
      return row;
    }));
  }

  function eventText(e) {
    const kind = e.event;
    if (kind === "PhaseStarted") return `${e.phase} started`;
    if (kind === "PhaseFinished") return `${e.phase} ${e.status} in ${fmt.dur(e.duration_s)}`;
    if (kind === "PhaseSkipped") return `${e.phase} skipped: ${e.reason}`;
    if (kind === "Report") return `${e.phase} ${e.report}: ${JSON.stringify(e.data)}`;
    if (kind === "PreviewUpdated") return `preview at iteration ${e.iteration}`;
    if (kind === "TaskDone") return `${e.phase} ${e.status} ${e.task}: ${e.message || ""}`;
    if (kind === "JobFailed") return `job failed: ${e.message}`;
    if (kind === "JobFinished") return `job ${e.status}`;
    return `${kind} ${JSON.stringify(e)}`;
  }

  function addEvent(list, e) {
    const li = el("li", e.failure ? { class: "failure" } : {});
    li.textContent = `${new Date(e.at * 1000).toLocaleTimeString()}  ${eventText(e)}`;
    li.dataset.event = e.event;
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }

  function chart(target, title, series, data) {
    const width = Math.max(320, target.clientWidth || 560);
    return new uPlot({
      title, width, height: 240, scales: { x: { time: false } },
      series: [{ label: "iteration" }, ...series],
      axes: [{ label: "iteration" }, {}],
    }, data, target);
  }

  function showPreview(name, mtime) {
    const img = document.getElementById("preview");
    if (!mtime) return;
    img.src = `/api/jobs/${encodeURIComponent(name)}/preview.png?t=${mtime}`;
    img.hidden = false;
    document.getElementById("no-preview").hidden = true;
    document.getElementById("preview-note").textContent = `(${fmt.time(mtime)})`;
  }

  function showVideo(name, manifest) {
    const video = document.getElementById("video");
    video.src = `/api/jobs/${encodeURIComponent(name)}/video.mp4`;
    video.hidden = false;
    document.getElementById("no-video").hidden = true;
    if (manifest) {
      const pre = document.getElementById("manifest");
      pre.textContent = JSON.stringify(manifest, null, 2);
      pre.hidden = false;
    }
  }

  // /losses.bin: uint32 count, count uint32 steps, count float32 loss A, count float32 loss B
  async function fetchLosses(base) {
    const buffer = await (await fetch(`${base}/losses.bin`)).arrayBuffer();
    const count = new DataView(buffer).getUint32(0, true);
    const column = (i, Type) => new Type(buffer, 4 + 4 * count * i, count);
    const nulls = (values) => (values.some(Number.isNaN)
      ? Array.from(values, (v) => (Number.isNaN(v) ? null : v)) : values);
    return {
      steps: column(0, Uint32Array),
      loss_a: nulls(column(1, Float32Array)),
      loss_b: nulls(column(2, Float32Array)),
    };
  }

  async function jobPage() {
    const name = decodeURIComponent(location.pathname.split("/").pop());
    document.getElementById("name").textContent = name;
    document.title = `${name} – faceswap-oci`;
    const base = `/api/jobs/${encodeURIComponent(name)}`;
    const [job, losses] = await Promise.all([
      fetch(base).then((r) => r.json()), fetchLosses(base),
    ]);
    renderSummary(job);
    renderTimeline(job.timeline);
    showPreview(name, job.preview);
    if (job.video) showVideo(name, job.manifest);
    const list = document.getElementById("events");
    job.events.forEach((e) => addEvent(list, e));
    document.getElementById("loss-note").textContent = `(${losses.steps.length} iterations)`;
    const lossPlot = chart(document.getElementById("loss-chart"), "", [
      { label: "loss A", stroke: "#2563eb" }, { label: "loss B", stroke: "#dc2626" },
    ], [losses.steps, losses.loss_a, losses.loss_b]);
    const ratePlot = chart(document.getElementById("rate-chart"), "", [
      { label: "it/s", stroke: "#059669" },
    ], [job.rates.steps, job.rates.it_per_s]);
    window.fsociCharts = { loss: lossPlot, rate: ratePlot };
    const rates = job.rates;
    let refreshing = false;
    const source = new EventSource(`${base}/stream`);
    source.addEventListener("job_event", (m) => {
      const e = JSON.parse(m.data);
      addEvent(list, e);
      if (e.event === "Progress" && e.data && e.data.it_per_s !== null && e.data.it_per_s !== undefined) {
        rates.steps.push(e.data.iteration); rates.it_per_s.push(e.data.it_per_s);
        ratePlot.setData([rates.steps, rates.it_per_s]);
      }
      if (e.event === "PhaseStarted" || e.event === "PhaseFinished" || e.event === "PhaseSkipped") {
        fetch(base).then((r) => r.json()).then((j) => renderTimeline(j.timeline));
      }
    });
    source.addEventListener("summary", (m) => renderSummary(JSON.parse(m.data)));
    source.addEventListener("preview", async (m) => {
      showPreview(name, JSON.parse(m.data).mtime);
      if (refreshing) return;
      refreshing = true;
      const fresh = await fetchLosses(base);
      lossPlot.setData([fresh.steps, fresh.loss_a, fresh.loss_b]);
      document.getElementById("loss-note").textContent = `(${fresh.steps.length} iterations)`;
      refreshing = false;
    });
    source.addEventListener("video", (m) => showVideo(name, JSON.parse(m.data).manifest));
    window.fsociStream = source;
  }

  window.FsociDashboard = { jobList, jobPage };
})();
