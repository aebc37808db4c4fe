// orca-math view: plain JavaScript over the viewer's JSON endpoints.
// Every value from a folder is written as text (createTextNode / textContent), never as HTML, so a
// problem holding markup shows as the characters it holds.
"use strict";
(function () {
  const POLL_MS = 2000;
  const PAGE = 50;
  const main = document.getElementById("main");
  const state = { source: "0", sources: [], kind: null, version: null, route: null, busy: false, rowsRefresh: null };

  // ---------------------------------------------------------------- helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "onclick") node.addEventListener("click", value);
      else if (key === "onchange") node.addEventListener("change", value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function fmt(value) {
    if (value === null || value === undefined || value === "") return "n/a";
    if (typeof value === "number") {
      if (Number.isInteger(value)) return value.toLocaleString("en-US");
      return Math.abs(value) < 1 ? value.toPrecision(3) : value.toFixed(2);
    }
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }
  function pct(value) { return value === null || value === undefined ? "n/a" : (100 * value).toFixed(1) + "%"; }
  function problemLink(id, text) { return el("a", { href: "#/problem/" + encodeURIComponent(id) }, text || id); }
  function badge(status) { return el("span", { class: "badge " + String(status || "").replace(/\s+/g, "-") }, status || ""); }
  function table(header, rows, attrs) {
    return el("table", attrs || {}, el("thead", {}, el("tr", {}, header.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows));
  }
  function kv(object, attrs) {
    const rows = Object.entries(object || {}).map(([k, v]) => el("tr", { dataset: { key: k } }, el("td", {}, k),
      el("td", {}, typeof v === "string" && (v.length > 80 || v.includes("\n")) ? el("div", { class: "text" }, v) : fmt(v))));
    return el("table", Object.assign({ class: "kv" }, attrs || {}), el("tbody", {}, rows));
  }
  function flatten(object, prefix, out) {
    out = out || {};
    for (const [k, v] of Object.entries(object || {})) {
      const name = prefix ? prefix + "." + k : k;
      if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, name, out);
      else out[name] = v;
    }
    return out;
  }
  async function api(path, params) {
    const query = new URLSearchParams(Object.assign({ source: state.source }, params || {}));
    const response = await fetch("api/" + path + "?" + query.toString(), { credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }
  function show(...children) { main.replaceChildren(...children); }
  function fail(error) { show(el("p", { class: "error", id: "error" }, String(error.message || error))); }

  // ---------------------------------------------------------------- overview
  function funnelTable(stages, seeds) {
    const rows = [];
    if (seeds !== undefined) rows.push(el("tr", { dataset: { stage: "seeds" } }, el("td", {}, "seeds"), el("td", { class: "num" }, ""),
      el("td", { class: "num", dataset: { col: "outputs" } }, fmt(seeds)), el("td", {}, ""), el("td", {}, ""), el("td", {}, ""), el("td", {}, ""), el("td", {}, ""), el("td", {}, ""), el("td", {}, "")));
    for (const s of stages) {
      rows.push(el("tr", { dataset: { stage: s.name } }, el("td", {}, s.name),
        el("td", { class: "num", dataset: { col: "inputs" } }, fmt(s.inputs)),
        el("td", { class: "num", dataset: { col: "outputs" } }, fmt(s.outputs)),
        el("td", { class: "num", dataset: { col: "dropped" } }, fmt(s.dropped || 0)),
        el("td", { class: "num", dataset: { col: "failed" } }, fmt(s.failed || 0)),
        el("td", { class: "num" }, fmt(s.prompt_tokens)), el("td", { class: "num" }, fmt(s.completion_tokens)),
        el("td", { class: "num" }, fmt(s.calls)), el("td", { class: "num" }, s.cost_usd === null || s.cost_usd === undefined ? "n/a" : "$" + Number(s.cost_usd).toFixed(4)),
        el("td", { class: "num", dataset: { col: "seconds" } }, s.seconds === null || s.seconds === undefined ? "n/a" : Number(s.seconds).toFixed(1) + " s")));
    }
    return table(["stage", "in", "out", "dropped", "failed", "prompt tokens", "completion tokens", "calls", "cost", "time"], rows, { id: "funnel" });
  }
  function reasonsTable(stages) {
    const rows = [];
    for (const s of stages) {
      for (const [kind, key] of [["dropped", "drops_by_reason"], ["failed", "failures_by_reason"]]) {
        for (const [reason, n] of Object.entries(s[key] || {})) {
          const href = "#/rows?" + new URLSearchParams({ status: kind, reason: reason }).toString();
          rows.push(el("tr", {}, el("td", {}, s.name), el("td", {}, badge(kind)), el("td", {}, el("a", { href: href }, reason)), el("td", { class: "num" }, fmt(n))));
        }
      }
    }
    return rows.length ? table(["stage", "kind", "reason", "rows"], rows, { id: "reasons" }) : el("p", { class: "muted" }, "No drops and no failures.");
  }
  function card(label, value, id) { return el("div", { class: "card", id: id }, el("div", { class: "muted" }, label), el("div", { class: "value" }, value)); }

  function renderOverview(o) {
    const parts = [el("h1", {}, o.title)];
    if (o.kind === "generation") {
      const f = o.funnel || {};
      const used = o.finished ? f : (o.live_totals || {});  // a running run: what its checkpoints record so far
      parts.push(el("div", { class: "cards" },
        card("status", o.finished && o.status !== "running" ? "finished" : (o.status || "running"), "run-status"),
        card("seeds", fmt(f.seeds), "card-seeds"), card("final rows", fmt(f.final_rows), "card-final"),
        card("problems seen", fmt(o.problems), "problem-count"),
        Object.entries(o.rows || {}).map(([k, v]) => card(k, el("a", { href: "#/rows?" + new URLSearchParams({ status: k }).toString() }, fmt(v)), "count-" + k.replace(/\s+/g, "-"))),
        card("tokens", fmt((used.prompt_tokens || 0) + (used.completion_tokens || 0)), "card-tokens"),
        card("cost", used.cost_usd === null || used.cost_usd === undefined ? "n/a" : "$" + Number(used.cost_usd).toFixed(4), "card-cost"),
        card("time", f.seconds === undefined ? "n/a" : fmt(f.seconds) + " s")));
      if (o.status === "stopped") parts.push(el("p", { class: "error", id: "stopped" }, "This run stopped before it finished (no process is writing it). Run the same command again to resume it."));
      parts.push(el("h2", {}, o.finished ? "Funnel (summary.json)" : "Funnel so far (from the checkpoints)"));
      parts.push(o.finished && (f.stages || []).length ? funnelTable(f.stages, f.seeds) : funnelTable(o.live || []));
      parts.push(el("h2", {}, "Drops and failures by reason"), reasonsTable(o.finished ? (f.stages || []) : (o.live || [])));
      if (o.decontamination) parts.push(el("h2", {}, "Decontamination"), kv(o.decontamination));
    } else if (o.kind === "evaluation") {
      const rows = Object.entries(o.benchmarks || {}).map(([name, r]) => el("tr", { dataset: { benchmark: name } }, el("td", {}, name),
        el("td", { class: "num" }, fmt(r.n)), el("td", { class: "num" }, fmt(r.correct)), el("td", { class: "num" }, pct(r.pass_at_1)),
        el("td", { class: "num" }, fmt(r.failures)), el("td", {}, fmt(r.methods)), el("td", {}, fmt(r.agreement))));
      parts.push(el("h2", {}, o.finished === false ? "Scores so far (from the checkpoints)" : "Scores"), table(["benchmark", "problems", "correct", "pass@1", "failures", "decided by", "agreement"], rows, { id: "scores" }));
    }
    if ((o.iterations || []).length) parts.push(el("h2", {}, "Iterations"), iterationsTable(o.iterations));
    if (o.recipe) parts.push(el("h2", {}, "Recipe"), el("details", {}, el("summary", {}, "recipe.yaml: the resolved recipe this folder's command ran (orca-math run it to repeat)"), kv(flatten(o.recipe), { id: "recipe" })));
    parts.push(el("h2", {}, "Settings"), el("details", { open: o.kind !== "generation" }, el("summary", {}, "the run's recorded settings"), kv(flatten(o.settings), { id: "settings" })));
    if (o.manifest) parts.push(el("details", {}, el("summary", {}, "manifest"), kv(flatten(o.manifest))));
    show(...parts);
  }
  function iterationsTable(iterations) {
    const names = [...new Set(iterations.flatMap((it) => Object.keys(it.benchmarks || {})))];
    const rows = iterations.map((it) => el("tr", { dataset: { iteration: it.iteration } },
      el("td", {}, state.kind === "learning" ? el("a", { href: "#/loop/" + it.iteration }, String(it.iteration)) : String(it.iteration)),
      el("td", {}, it.running ? "running" : fmt(it.method)), el("td", {}, fmt(it.model)),
      names.map((n) => el("td", { class: "num" }, pct((it.benchmarks || {})[n])))));
    return table(["iteration", "method", "model", ...names], rows, { id: "iterations" });
  }

  // ---------------------------------------------------------------- rows
  const FACETS = ["status", "stage", "origin", "method", "reason"];
  const FACET_LABELS = { generation: { stage: "stage", method: "verification" }, evaluation: { stage: "benchmark", method: "graded by", status: "grade" },
    learning: { stage: "iteration", method: "graded by", status: "label" } };
  function facetLabel(name) { return ((FACET_LABELS[state.kind] || {})[name]) || name; }

  function renderRows(params) {
    const query = Object.assign({ status: "", stage: "", origin: "", method: "", reason: "", text: "", offset: "0" }, params);
    const selects = {};
    const textInput = el("input", { type: "search", id: "search", placeholder: "text in question, answer, reason", value: query.text, size: 34 });
    const total = el("span", { id: "row-total" }, "");
    const body = el("tbody", {});
    const head = el("thead", {});
    const pager = el("span", { class: "muted", id: "page-info" }, "");
    const go = (changes) => { location.hash = "#/rows?" + new URLSearchParams(Object.assign({}, query, changes)).toString(); };
    const filters = el("div", { class: "filters" }, FACETS.map((name) => {
      selects[name] = el("select", { id: "filter-" + name, onchange: () => go({ [name]: selects[name].value, offset: 0 }) });
      return el("label", {}, facetLabel(name), selects[name]);
    }), el("label", {}, "text", el("form", { id: "search-form" }, textInput, el("button", { type: "submit", id: "search-button" }, "Search"))));
    filters.querySelector("form").addEventListener("submit", (event) => { event.preventDefault(); go({ text: textInput.value, offset: 0 }); });
    show(el("h1", {}, "Rows"), filters, el("p", {}, total, " rows match"),
      el("div", { class: "pager" }, el("button", { id: "prev", onclick: () => go({ offset: Math.max(0, Number(query.offset) - PAGE) }) }, "◀ previous"),
        pager, el("button", { id: "next", onclick: () => go({ offset: Number(query.offset) + PAGE }) }, "next ▶")),
      el("table", { id: "rows" }, head, body));

    async function refresh() {
      const page = await api("rows", Object.assign({}, query, { limit: PAGE }));
      for (const name of FACETS) {
        const options = [el("option", { value: "" }, "any")];
        const counts = page.facets[name] || {};
        if (query[name] && !(query[name] in counts)) counts[query[name]] = 0;
        for (const [value, n] of Object.entries(counts)) options.push(el("option", { value: value }, value + " (" + fmt(n) + ")"));
        selects[name].replaceChildren(...options);
        selects[name].value = query[name];
        selects[name].parentElement.hidden = options.length === 1;  // a facet this folder does not have (no origins in a loop)
      }
      total.textContent = fmt(page.total);
      total.dataset.total = page.total;
      const first = page.total ? page.offset + 1 : 0;
      pager.textContent = "rows " + fmt(first) + "–" + fmt(page.offset + page.rows.length) + " of " + fmt(page.total);
      const difficulty = page.rows.some((r) => r.difficulty !== null && r.difficulty !== undefined);
      const columns = state.kind === "generation"
        ? ["status", "stage", "origin", "round", "question", "final answer", "verification", ...(difficulty ? ["difficulty"] : []), "reason"]
        : ["status", facetLabel("stage"), "id", "question", "reply", "final answer", "graded by", "reason"];
      head.replaceChildren(el("tr", {}, columns.map((c) => el("th", {}, c))));
      body.replaceChildren(...page.rows.map((r) => {
        const checked = r.verified === true ? " ✓" : r.verified === false ? " ✗" : "";
        const cells = state.kind === "generation"
          ? [badge(r.status), r.stage, r.origin, fmt(r.round),
            [el("span", { class: "question" }, r.question), r.answer ? el("details", { onclick: (event) => event.stopPropagation() }, el("summary", {}, "answer"), el("div", { class: "text" }, r.answer)) : null],
            fmt(r.final_answer),
            (r.verification || "") + checked, ...(difficulty ? [fmt(r.difficulty)] : []), r.reason || ""]
          : [badge(r.status), r.stage, r.id, el("span", { class: "question" }, r.question), el("div", { class: "text" }, r.answer), fmt(r.final_answer), r.verification || "", r.reason || ""];
        return el("tr", { class: "clickable", dataset: { id: r.id }, onclick: () => { location.hash = "#/problem/" + encodeURIComponent(r.id); } },
          cells.map((c) => el("td", {}, c)));
      }));
      document.getElementById("prev").disabled = Number(query.offset) <= 0;
      document.getElementById("next").disabled = page.offset + page.rows.length >= page.total;
    }
    state.rowsRefresh = refresh;
    return refresh();
  }

  // ---------------------------------------------------------------- lineage
  function brief(item, label) {
    if (!item) return null;
    if (item.missing) return el("div", { class: "node" }, label ? el("h3", {}, label) : null, item.id, el("span", { class: "muted" }, " (not in this run)"));
    return el("div", { class: "node " + String(item.status || "").replace(/\s+/g, "-"), dataset: { id: item.id } },
      el("h3", {}, label ? label + ": " : "", problemLink(item.id), " ", badge(item.status), el("span", { class: "muted" }, item.origin + (item.round ? " round " + item.round : ""))),
      item.diff ? [item.suggestions ? el("div", { class: "muted" }, "suggestions: " + item.suggestions.join("; ")) : null, diffView(item.diff, false)]
        : el("div", { class: "question" }, item.question || ""));
  }
  function relatives(title, group, id) {
    if (!group || !group.total) return el("section", { id: id }, el("h2", {}, title), el("p", { class: "muted" }, "none"));
    const more = group.total > group.items.length ? el("p", { class: "muted" }, "showing " + group.items.length + " of " + group.total) : null;
    return el("section", { id: id }, el("h2", {}, title + " (" + group.total + ")"), group.items.map((item) => brief(item)), more);
  }
  function diffView(parts, main) {
    return el("div", { class: "question", id: main === false ? null : "diff" }, parts.map(([op, text]) => op === "insert" ? el("ins", {}, text) : op === "delete" ? el("del", {}, text) : text));
  }
  function renderLineage(p) {
    const node = p.node;
    const parts = [el("h1", {}, "Problem ", node.id, " ", badge(node.status))];
    parts.push(el("section", { id: "ancestors" }, el("h2", {}, "Lineage"),
      p.ancestors.length ? p.ancestors.map((a, i) => brief(a, i === 0 ? "seed" : (a.origin === "ask_me_anything" ? "Ask-Me-Anything" : "round " + a.round))) : el("p", { class: "muted" }, "This is a seed."),
      el("div", { class: "node " + String(node.status || "").replace(/\s+/g, "-"), id: "this-problem" },
        el("h3", {}, "this problem: ", node.origin + (node.round ? " round " + node.round : ""), " ", badge(node.status)),
        el("div", { class: "question" }, node.question || ""))));
    if (p.statement) parts.push(el("section", { id: "statement" }, el("h2", {}, "Ask-Me-Anything statement"), el("div", { class: "question" }, p.statement),
      p.known_answer !== null ? el("p", {}, "target answer: ", el("strong", {}, p.known_answer)) : null));
    if (p.suggestions || p.diff) parts.push(el("section", { id: "hardening" }, el("h2", {}, "Hardening round " + (node.round || "")),
      p.suggestions ? [el("h3", {}, "Suggester's suggestions"), el("ol", { id: "suggestions" }, p.suggestions.map((s) => el("li", {}, s)))] : null,
      p.diff ? [el("h3", {}, "Editor's problem, against the text it edited"), diffView(p.diff)] : null));
    parts.push(relatives("Siblings (written from the same parent)", p.siblings, "siblings"));
    parts.push(relatives("Children (written from this problem)", p.children, "children"));
    const solutions = (p.solutions || []).map((s, i) => el("div", { class: "node", dataset: { solution: i } }, el("h3", {}, "solution " + (i + 1)),
      typeof s === "object" ? Object.entries(s).map(([k, v]) => el("div", {}, el("span", { class: "muted" }, k + ": "), typeof v === "string" && v.includes("\n") ? el("div", { class: "text" }, v) : fmt(v))) : el("div", { class: "text" }, String(s))));
    parts.push(el("section", { id: "solutions" }, el("h2", {}, "Solutions"),
      p.answer ? [el("h3", {}, "kept answer (final: " + fmt(p.final_answer) + ")"), el("div", { class: "text", id: "answer" }, p.answer)] : el("p", { class: "muted" }, "not solved"),
      solutions, el("h3", {}, "verification"),
      el("div", { id: "verification" }, p.verification && typeof p.verification === "object" ? kv(flatten(p.verification)) : fmt(p.verification),
        " ", p.verified === null || p.verified === undefined ? "" : badge(p.verified ? "verified" : "not verified"), p.verification_detail ? el("span", { class: "muted" }, " " + p.verification_detail) : null)));
    const o = p.outcome;
    parts.push(el("section", { id: "outcome", dataset: { status: o.status } }, el("h2", {}, "Outcome"),
      el("p", {}, badge(o.status), " at stage ", el("strong", {}, o.stage), o.reason ? [": ", el("strong", { id: "outcome-reason" }, o.reason)] : null),
      o.detail ? el("p", { id: "outcome-detail" }, o.detail) : null, o.duplicate_of ? el("p", {}, "duplicate of ", problemLink(o.duplicate_of)) : null,
      o.raw_reply ? [el("h3", {}, "raw reply"), el("div", { class: "text", id: "raw-reply" }, o.raw_reply)] : null));
    const earlier = (p.failures || []).filter((f) => !(o.status === "failed" && f.stage === o.stage));
    if (earlier.length) parts.push(el("section", { id: "failures" }, el("h2", {}, "Failures along the way"),
      earlier.map((f) => el("div", { class: "node failed", dataset: { stage: f.stage } }, el("h3", {}, f.stage, " ", badge("failed"), " ", f.reason || ""),
        f.raw_reply ? [el("div", { class: "muted" }, "raw reply (after " + fmt(f.attempts) + " attempts)"), el("div", { class: "text" }, f.raw_reply)] : null))));
    parts.push(el("section", { id: "stages" }, el("h2", {}, "Stage by stage (as each checkpoint holds it)"),
      p.stages.map((s) => el("div", { class: "node " + s.kind, dataset: { stage: s.stage, kind: s.kind } },
        el("h3", {}, s.stage, " ", badge(s.kind === "ok" ? "passed" : s.kind)), kv(flatten(s.row))))));
    show(...parts);
  }
  function renderItem(p) {
    show(el("h1", {}, "Item ", p.id), p.items.map((item) => el("div", { class: "node", dataset: { stage: item.benchmark } }, el("h3", {}, item.benchmark), kv(item))));
  }
  function renderLoopProblem(p) {
    const parts = [el("h1", {}, "Problem ", p.id), el("div", { class: "question", id: "loop-question" }, p.question || ""),
      el("h3", {}, "teacher's answer"), el("div", { class: "text" }, p.answer || "")];
    for (const [iteration, samples] of Object.entries(p.iterations)) {
      parts.push(el("section", { dataset: { iteration: iteration } }, el("h2", {}, iteration),
        table(["sample", "label", "final answer", "graded by", "response"], samples.map((s) => el("tr", {}, el("td", {}, fmt(s.sample_index)),
          el("td", {}, badge(s.label === null || s.label === undefined ? "ungraded" : s.label ? "correct" : "incorrect")), el("td", {}, fmt(s.final_answer)),
          el("td", {}, fmt(s.method)), el("td", {}, el("div", { class: "text" }, s.response)))), { class: "samples" }),
        Object.entries((p.pairs || {})[iteration] || {}).map(([kind, page]) => [el("h3", {}, kind + " rows built from them (" + fmt(page.total) + ")"),
          pairsTable(page, "pairs-" + iteration + "-" + kind)])));
    }
    if (!Object.keys(p.iterations).length) parts.push(el("p", { class: "muted" }, "No student samples of this problem yet."));
    show(...parts);
  }

  function pairsTable(page, id) {
    const columns = page.columns.filter((c) => c !== "problem_id" || id === undefined);
    return table(columns, page.rows.map((r) => el("tr", {}, columns.map((c) => el("td", {},
      c === "problem_id" ? problemLink(r[c]) : c === "label" ? badge(r[c] ? "desirable" : "undesirable") : el("div", { class: "text" }, fmt(r[c])))))), id ? { id: id } : {});
  }

  // ---------------------------------------------------------------- learning loop
  async function renderLoop(number) {
    const o = await api("overview");
    if (o.kind !== "learning") { show(el("p", { class: "muted" }, "This folder is not a learning loop.")); return; }
    if (!number) { show(el("h1", {}, "Learning loop"), iterationsTable(o.iterations)); return; }
    const it = await api("iteration/" + number);
    const pairsBox = el("div", { id: "pairs" });
    const samplesBox = el("div", {});
    const parts = [el("h1", {}, "Iteration " + number), el("p", {}, "method ", el("strong", {}, fmt(it.method)), ", model ", fmt(it.model)),
      el("h2", {}, "Scores"), kv(Object.fromEntries(Object.entries(it.benchmarks || {}).map(([k, v]) => [k, pct(v)])), { id: "iteration-scores" }),
      el("h2", {}, "Labels"), kv(it.labels || {}), el("h2", {}, "Preference data"), kv(flatten(it.preferences || {})),
      el("div", {}, (it.pair_kinds || []).map((kind) => el("button", { onclick: () => showPairs(kind, 0), id: "pairs-" + kind }, kind))), pairsBox,
      el("h2", {}, "Student samples"), samplesBox,
      el("p", {}, el("a", { href: "#/rows?" + new URLSearchParams({ stage: "iteration-" + number }).toString() }, "all samples of this iteration in the rows table, to filter and search"))];
    show(...parts);
    const samples = await api("rows", { stage: "iteration-" + number, limit: 50 });
    samplesBox.replaceChildren(el("p", { class: "muted" }, "the first " + samples.rows.length + " of " + fmt(samples.total) + " samples"),
      table(["problem", "label", "final answer", "graded by", "question", "response"], samples.rows.map((r) => el("tr", {},
        el("td", {}, problemLink(r.id)), el("td", {}, badge(r.status)), el("td", {}, fmt(r.final_answer)), el("td", {}, fmt(r.verification)),
        el("td", {}, r.question), el("td", {}, el("div", { class: "text" }, r.answer)))), { id: "iteration-samples" }));
    async function showPairs(kind, offset) {
      const page = await api("pairs/" + number + "/" + kind, { offset: offset, limit: 20 });
      pairsBox.replaceChildren(el("p", {}, kind + ": " + fmt(page.total) + " rows"), pairsTable(page),
        offset + 20 < page.total ? el("button", { onclick: () => showPairs(kind, offset + 20) }, "more") : null);
    }
    if ((it.pair_kinds || []).length) showPairs(it.pair_kinds[0], 0);
  }

  // ---------------------------------------------------------------- compare
  async function renderCompare(params) {
    const listing = (await api("sources")).sources;
    const a = params.a || (listing[0] && listing[0].id) || "0";
    const b = params.b || (listing[1] && listing[1].id) || a;
    const pick = (name, value) => {
      const select = el("select", { id: "compare-" + name, onchange: () => { location.hash = "#/compare?" + new URLSearchParams(Object.assign({ a: a, b: b }, { [name]: select.value })).toString(); } },
        listing.map((s) => el("option", { value: s.id }, s.title)));
      select.value = value;
      return el("label", {}, name.toUpperCase() + " ", select);
    };
    const parts = [el("h1", {}, "Compare"), el("div", { class: "filters" }, pick("a", a), pick("b", b))];
    if (listing.length < 2) parts.push(el("p", { class: "muted" }, "Only one thing to compare here. Start the viewer with several folders (orca-math view A --compare B), or open an output folder with several runs, or a learning loop (its iterations)."));
    const c = await api("compare", { a: a, b: b });
    parts.push(el("h2", {}, "Scores"), table(["", c.a.title, c.b.title], c.scores.map(([name, x, y]) =>
      el("tr", { class: JSON.stringify(x) !== JSON.stringify(y) ? "differs" : "", dataset: { score: name } }, el("td", {}, name), el("td", { class: "num" }, fmt(x)), el("td", { class: "num" }, fmt(y)))), { id: "compare-scores" }));
    parts.push(el("h2", {}, "Settings that differ"), c.settings.length ? table(["setting", "A", "B"], c.settings.map(([k, x, y]) =>
      el("tr", { dataset: { setting: k } }, el("td", {}, k), el("td", {}, fmt(x)), el("td", {}, fmt(y)))), { id: "compare-settings" }) : el("p", { class: "muted" }, "none"),
    el("p", { class: "muted" }, c.same_settings + " settings are the same."));
    show(...parts);
  }

  // ---------------------------------------------------------------- routing and live refresh
  function parseRoute() {
    const hash = location.hash.replace(/^#\/?/, "") || "overview";
    const [path, query] = hash.split("?");
    const params = Object.fromEntries(new URLSearchParams(query || ""));
    const [view, ...rest] = path.split("/");
    return { view: view || "overview", arg: rest.length ? decodeURIComponent(rest.join("/")) : null, params: params };
  }
  async function route() {
    const r = parseRoute();
    state.route = r;
    state.rowsRefresh = null;
    for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === r.view || (r.view === "problem" && a.dataset.view === "rows"));
    try {
      if (r.view === "overview") renderOverview(await api("overview"));
      else if (r.view === "rows") await renderRows(r.params);
      else if (r.view === "problem") {
        const p = await api("problem/" + encodeURIComponent(r.arg));
        if (p.kind === "generation") renderLineage(p); else if (p.kind === "learning") renderLoopProblem(p); else renderItem(p);
      } else if (r.view === "loop") await renderLoop(r.arg);
      else if (r.view === "compare") await renderCompare(r.params);
      else show(el("p", {}, "No such page."));
      document.body.dataset.view = r.view;
    } catch (error) { fail(error); }
  }
  async function poll() {
    if (state.busy || document.hidden) return;
    state.busy = true;
    const live = document.getElementById("live");
    try {
      const o = await api("overview");
      live.classList.remove("stale");
      if (state.version !== null && o.version !== state.version) {
        if (state.route.view === "overview") renderOverview(o);
        else if (state.route.view === "rows" && state.rowsRefresh) await state.rowsRefresh();
      }
      state.version = o.version;
    } catch (error) { live.classList.add("stale"); } finally { state.busy = false; }
  }
  async function start() {
    try {
      const listing = (await api("sources")).sources;
      state.sources = listing;
      const select = document.getElementById("source");
      const folders = listing.filter((s) => !s.id.includes(":"));
      select.replaceChildren(...folders.map((s) => el("option", { value: s.id }, s.title)));
      select.parentElement.hidden = folders.length < 2;
      select.addEventListener("change", async () => { state.source = select.value; await setKind(); route(); });
      await setKind();
    } catch (error) { fail(error); return; }
    window.addEventListener("hashchange", route);
    await route();
    setInterval(poll, POLL_MS);
  }
  async function setKind() {
    const o = await api("overview");
    state.kind = o.kind;
    state.version = o.version;
    document.querySelector('#nav a[data-view="loop"]').hidden = o.kind !== "learning";
    document.title = "orca-math view: " + o.title;
  }
  start();
})();
