/* Switchyard dashboard: what both pages share (the API key, calls to the API, formatting).
   No build step, no dependencies: plain browser JavaScript served by the API. */
"use strict";

const SY = (() => {
  const KEY = "switchyard.apiKey";

  function key() {
    return sessionStorage.getItem(KEY);
  }

  /* The sign-in form: asks for the key once per tab; `message` says why it asks again. */
  function askForKey(message, onKey) {
    const overlay = document.getElementById("login");
    const form = document.getElementById("login-form");
    const input = document.getElementById("login-key");
    document.getElementById("login-message").textContent = message || "";
    overlay.hidden = false;
    input.value = "";
    input.focus();
    form.onsubmit = (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) return;
      sessionStorage.setItem(KEY, value);
      overlay.hidden = true;
      onKey();
    };
  }

  function signOut() {
    sessionStorage.removeItem(KEY);
    location.reload();
  }

  /* GET a JSON route with the key; rejects with {status, code, message}. */
  async function getJson(path) {
    let response;
    try {
      response = await fetch(path, { headers: { Authorization: "Bearer " + key() }, cache: "no-store" });
    } catch (error) {
      throw { status: 0, code: "unreachable", message: "The API did not answer: " + error.message };
    }
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      const detail = (body && body.error) || {};
      throw {
        status: response.status,
        code: detail.code || "http_" + response.status,
        message: detail.message || response.statusText,
      };
    }
    return body;
  }

  function showError(error) {
    const banner = document.getElementById("error");
    if (!error) {
      banner.hidden = true;
      banner.textContent = "";
      return;
    }
    banner.hidden = false;
    banner.textContent = (error.status ? error.status + " " : "") + error.code + ": " + error.message;
  }

  /* An element with children; attrs: class, text, data-*, href, title... */
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else node.setAttribute(name, value);
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  /* A figure: its raw value in data-value (what the tests compare), shown formatted. */
  function figure(name, value, format) {
    const shown = value === null || value === undefined ? "–" : format(value);
    return el("span", { class: "figure", "data-figure": name, "data-value": value === null ? "" : String(value), text: shown });
  }

  const fmt = {
    int: (v) => Number(v).toLocaleString("en-US"),
    rate: (v) => (v * 100).toFixed(1) + " %",
    perSecond: (v) => Number(v).toFixed(2),
    ms: (v) => (v >= 1000 ? (v / 1000).toFixed(2) + " s" : Number(v).toFixed(1) + " ms"),
    seconds: (v) => (v >= 60 ? (v / 60).toFixed(1) + " min" : Number(v).toFixed(1) + " s"),
    usd: (v) => {
      const n = Number(v);
      if (n === 0 || Math.abs(n) >= 1) return "$" + n.toFixed(2);
      if (Math.abs(n) >= 0.01) return "$" + n.toFixed(4);
      return "$" + n.toFixed(8).replace(/0+$/, ""); // fractions of a cent
    },
    time: (v) => (v ? new Date(v).toLocaleTimeString("en-GB", { hour12: false }) : "–"),
    dateTime: (v) => (v ? new Date(v).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") : "–"),
  };

  /* A table: columns [{title, cell(row) -> node or text, numeric}]; `empty` when no rows. */
  function table(columns, rows, empty, name) {
    if (!rows || rows.length === 0) return el("p", { class: "empty", "data-empty": name, text: empty });
    const head = el("tr", {}, columns.map((c) => el("th", { class: c.numeric ? "num" : "", text: c.title })));
    const body = rows.map((row) =>
      el("tr", { "data-row": name }, columns.map((c) => {
        const value = c.cell(row);
        return el("td", { class: c.numeric ? "num" : "" }, [value instanceof Node ? value : String(value)]);
      }))
    );
    return el("table", { "data-table": name }, [el("thead", {}, [head]), el("tbody", {}, body)]);
  }

  /* A bar from 0 to 1 (CSSOM width: allowed by the page's style-src 'self'). */
  function bar(share, level) {
    const fill = el("span", { class: "bar-fill " + (level || "") });
    fill.style.width = Math.max(0, Math.min(1, share)) * 100 + "%";
    return el("span", { class: "bar" }, [fill]);
  }

  function replace(id, ...children) {
    const node = document.getElementById(id);
    node.replaceChildren(...children);
  }

  return { key, askForKey, signOut, getJson, showError, el, figure, fmt, table, bar, replace };
})();
