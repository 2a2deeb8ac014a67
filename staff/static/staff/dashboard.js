// The staff dashboard (/admin/dashboard/): draws GET /api/admin/stats and the live
// generations of GET /api/admin/generations with Chart.js (vendored, same origin), and
// refreshes them in place every few seconds without reloading the page. The kill switch is
// POST /api/admin/generations/{id}/stop with the session's CSRF token. Text that users
// control (emails, model names) only ever goes into the page as textContent.
(function () {
  "use strict";

  const root = document.getElementById("dashboard");
  if (!root || typeof window.Chart === "undefined") {
    return;
  }
  const Chart = window.Chart;
  const statsUrl = root.dataset.statsUrl;
  const generationsUrl = root.dataset.generationsUrl;
  const csrfUrl = root.dataset.csrfUrl;
  const refreshMs = Math.max(1, Number(root.dataset.refreshSeconds || "5")) * 1000;
  const hoursSelect = document.getElementById("dashboard-hours");
  const status = document.getElementById("dashboard-status");
  const LIVE_SAMPLES = 60;
  const PALETTE = ["#417690", "#d9822b", "#5b9b4a", "#a94442", "#7b5ea7", "#2a9d8f", "#b08900", "#666"];

  const styles = getComputedStyle(document.documentElement);
  const textColor = styles.getPropertyValue("--body-quiet-color").trim() || "#666";
  const gridColor = styles.getPropertyValue("--hairline-color").trim() || "#e8e8e8";
  Chart.defaults.color = textColor;
  Chart.defaults.borderColor = gridColor;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  function colour(index) {
    return PALETTE[index % PALETTE.length];
  }

  function makeChart(id, type, yTitle) {
    return new Chart(document.getElementById(id), {
      type: type,
      data: { labels: [], datasets: [] },
      options: {
        responsive: true,
        interaction: { mode: "index", intersect: false },
        scales: {
          y: {
            beginAtZero: true,
            title: { display: Boolean(yTitle), text: yTitle || "" },
            ticks: { callback: (value) => Number(value).toLocaleString(undefined, { maximumSignificantDigits: 4 }) },
          },
        },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  const charts = {
    tokensModel: makeChart("chart-tokens-model", "line", "tokens"),
    costModel: makeChart("chart-cost-model", "line", "cost"),
    tokensPlan: makeChart("chart-tokens-plan", "line", "tokens"),
    costPlan: makeChart("chart-cost-plan", "line", "cost"),
    ttft: makeChart("chart-ttft", "bar", "ms"),
    speed: makeChart("chart-speed", "bar", "tokens/s"),
    moderation: makeChart("chart-moderation", "bar", "decisions"),
    live: makeChart("chart-live", "line", ""),
  };
  charts.moderation.options.scales.x = { stacked: true };
  charts.moderation.options.scales.y.stacked = true;

  function bucketLabel(iso, bucket) {
    const moment = new Date(iso);
    const day = moment.toLocaleDateString(undefined, { month: "short", day: "numeric" });
    if (bucket === "day") {
      return day;
    }
    return day + " " + moment.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  }

  // rows: [{bucket, <key>, <value>}] -> labels per bucket, one dataset per key.
  function series(chart, rows, key, value, bucket, fill) {
    const buckets = [...new Set(rows.map((row) => row.bucket))].sort();
    const keys = [...new Set(rows.map((row) => String(row[key] ?? "(none)")))].sort();
    chart.data.labels = buckets.map((iso) => bucketLabel(iso, bucket));
    chart.data.datasets = keys.map((name, index) => {
      const byBucket = new Map(
        rows.filter((row) => String(row[key] ?? "(none)") === name).map((row) => [row.bucket, row[value]])
      );
      return {
        label: name,
        data: buckets.map((iso) => byBucket.get(iso) ?? 0),
        borderColor: colour(index),
        backgroundColor: colour(index),
        fill: Boolean(fill),
        tension: 0.2,
      };
    });
    chart.update();
  }

  function percentiles(chart, rows, p50, p95) {
    chart.data.labels = rows.map((row) => row.model);
    chart.data.datasets = [
      { label: "p50", data: rows.map((row) => row[p50]), backgroundColor: colour(0) },
      { label: "p95", data: rows.map((row) => row[p95]), backgroundColor: colour(1) },
    ];
    chart.update();
  }

  const liveSamples = { labels: [], queued: [], websockets: [] };

  function sampleLive(stats) {
    const queued = stats.queues.reduce((sum, queue) => sum + (queue.waiting || 0), 0);
    liveSamples.labels.push(new Date().toLocaleTimeString());
    liveSamples.queued.push(queued);
    liveSamples.websockets.push(stats.websockets);
    for (const list of Object.values(liveSamples)) {
      while (list.length > LIVE_SAMPLES) {
        list.shift();
      }
    }
    charts.live.data.labels = liveSamples.labels.slice();
    charts.live.data.datasets = [
      { label: "queued", data: liveSamples.queued.slice(), borderColor: colour(1), backgroundColor: colour(1) },
      { label: "open websockets", data: liveSamples.websockets.slice(), borderColor: colour(0), backgroundColor: colour(0) },
    ];
    charts.live.update();
  }

  function setText(id, value) {
    document.getElementById(id).textContent = value;
  }

  function cell(row, text, numeric) {
    const td = document.createElement("td");
    td.textContent = text;
    if (numeric) {
      td.className = "numeric";
    }
    row.appendChild(td);
    return td;
  }

  function emptyRow(tbody, columns, text) {
    const row = document.createElement("tr");
    const td = cell(row, text, false);
    td.colSpan = columns;
    td.className = "empty";
    tbody.replaceChildren(row);
  }

  function drawTopUsers(rows) {
    const tbody = document.querySelector("#top-users tbody");
    if (!rows.length) {
      emptyRow(tbody, 4, "No usage in this window.");
      return;
    }
    tbody.replaceChildren(
      ...rows.map((user) => {
        const row = document.createElement("tr");
        cell(row, user.email || "(deleted account)", false);
        cell(row, String(user.generations), true);
        cell(row, user.total_tokens.toLocaleString(), true);
        cell(row, user.cost.toFixed(4), true);
        return row;
      })
    );
  }

  function drawStats(stats) {
    const bucket = stats.window.bucket;
    series(charts.tokensModel, stats.usage_by_model, "model", "tokens", bucket);
    series(charts.costModel, stats.usage_by_model, "model", "cost", bucket);
    series(charts.tokensPlan, stats.usage_by_plan, "plan", "tokens", bucket);
    series(charts.costPlan, stats.usage_by_plan, "plan", "cost", bucket);
    series(charts.moderation, stats.moderation, "category", "events", bucket, true);
    percentiles(charts.ttft, stats.latency, "ttft_ms_p50", "ttft_ms_p95");
    percentiles(charts.speed, stats.latency, "tokens_per_second_p50", "tokens_per_second_p95");
    sampleLive(stats);
    drawTopUsers(stats.top_users);
    const tokens = stats.usage_by_model.reduce((sum, row) => sum + row.tokens, 0);
    const cost = stats.usage_by_model.reduce((sum, row) => sum + row.cost, 0);
    setText("tile-running", String(stats.live.running));
    setText("tile-queued", String(stats.live.queued));
    setText("tile-websockets", stats.websockets === null ? "?" : String(stats.websockets));
    setText("tile-tokens", tokens.toLocaleString());
    setText("tile-cost", cost.toFixed(4));
  }

  let csrfToken = null;

  async function csrf() {
    if (csrfToken === null) {
      const response = await fetch(csrfUrl, { credentials: "same-origin" });
      csrfToken = (await response.json()).csrf_token;
    }
    return csrfToken;
  }

  async function stop(generation, button) {
    const who = generation.user.email || "user " + generation.user.id;
    if (!window.confirm("Stop this " + generation.model + " answer for " + who + "?")) {
      return;
    }
    button.disabled = true;
    button.textContent = "Stopping…";
    const response = await fetch(generationsUrl + "/" + encodeURIComponent(generation.generation_id) + "/stop", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": await csrf(), Accept: "application/json" },
    });
    if (response.status === 202) {
      button.textContent = "Stop requested";
    } else {
      const body = await response.json().catch(() => ({}));
      button.textContent = "Failed";
      status.textContent = (body.error && body.error.message) || "The stop failed (" + response.status + ").";
      status.classList.add("error");
    }
    refresh();
  }

  function drawGenerations(rows) {
    const tbody = document.querySelector("#live-generations tbody");
    if (!rows.length) {
      emptyRow(tbody, 8, "No generation is running or queued.");
      return;
    }
    tbody.replaceChildren(
      ...rows.map((generation) => {
        const row = document.createElement("tr");
        row.dataset.generationId = generation.generation_id;
        cell(row, generation.user.email || "user " + generation.user.id, false);
        cell(row, generation.model || "", false);
        cell(row, generation.state, false);
        cell(row, generation.age_seconds.toFixed(0) + " s", true);
        cell(row, String(generation.tokens.completion), true);
        cell(row, generation.worker || "–", false);
        cell(row, generation.queue_position === null ? "–" : "#" + generation.queue_position, true);
        const action = document.createElement("td");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "stop-generation";
        button.textContent = "Stop";
        button.addEventListener("click", () => stop(generation, button));
        action.appendChild(button);
        row.appendChild(action);
        return row;
      })
    );
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error((body.error && body.error.message) || "HTTP " + response.status);
    }
    return response.json();
  }

  let timer = null;
  let refreshing = false;

  async function refresh() {
    if (refreshing) {
      return;
    }
    refreshing = true;
    window.clearTimeout(timer);
    try {
      const [stats, generations] = await Promise.all([
        getJson(statsUrl + "?hours=" + encodeURIComponent(hoursSelect.value)),
        getJson(generationsUrl + "?limit=100"),
      ]);
      drawStats(stats);
      drawGenerations(generations.results);
      status.classList.remove("error");
      status.textContent = "Updated " + new Date().toLocaleTimeString();
      root.dataset.refreshes = String(Number(root.dataset.refreshes || "0") + 1);
    } catch (error) {
      status.classList.add("error");
      status.textContent = "Could not refresh: " + error.message;
    } finally {
      refreshing = false;
      timer = window.setTimeout(refresh, refreshMs);
    }
  }

  hoursSelect.addEventListener("change", refresh);
  refresh();
})();
