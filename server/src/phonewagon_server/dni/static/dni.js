/* Phonewagon dynamic number insertion, see docs/dni.md. Whatever fails, the page stays as it is. */
(function () {
  "use strict";
  const NAME = "phonewagon_visitor";
  const ID = /^[\w-]{22,64}$/;
  const E164 = /^\+[1-9]\d{6,14}$/;
  const SKIP = "script,style,textarea,input,noscript";
  const SEP = "[\\s().\\u2010-\\u2015-]{0,3}"; // between digits: ") " in "(503) 555-0100"
  const noop = () => {};
  const guard = (fn) => function () { // on every entry point: no exception reaches the page
    try { return fn.apply(this, arguments); } catch (e) { return undefined; }
  };
  let key, origin, visitor, visit, observer, timer, stopped = false, period = 60000;
  const numbers = {}; // target: the number shown instead
  let rules = []; // for content added later

  function loadVisitor() {
    let id = null;
    try { id = localStorage.getItem(NAME); } catch (e) { /* storage disabled */ }
    try {
      if (!ID.test(id)) id = (document.cookie.match(/(?:^|; *)phonewagon_visitor=([\w-]+)/) || [])[1];
    } catch (e) { /* cookies disabled */ }
    return ID.test(id) ? id : null;
  }

  function keepVisitor(id) {
    if (!ID.test(id)) return;
    visitor = id;
    try { localStorage.setItem(NAME, id); } catch (e) { /* storage disabled */ }
    try {
      document.cookie = NAME + "=" + id + "; max-age=2592000; path=/; SameSite=Lax" +
        (location.protocol === "https:" ? "; Secure" : "");
    } catch (e) { /* cookies disabled */ }
  }

  function device() {
    const ua = navigator.userAgent;
    if (/iPad|Silk|Android(?!.*Mobi)/i.test(ua) ||
        (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1)) return "tablet"; // iPadOS 13+
    return /Mobi|iPhone|iPod|Android/i.test(ua) ? "mobile" : "desktop";
  }

  function unbounce() {
    const page = window.ub && window.ub.page;
    const s = (v) => (v == null ? undefined : String(v).slice(0, 128));
    return page ? { page_id: s(page.id), variant_id: s(page.variantId), visitor_id: s(page.visitorId) }
      : undefined;
  }

  // text/plain: no CORS preflight. Rejects unless JSON comes back with a 200 within 5 s.
  function post(path, body) {
    const abort = new AbortController();
    const timeout = setTimeout(guard(() => abort.abort()), 5000);
    return fetch(origin + path, {
      method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "text/plain" },
      credentials: "omit", keepalive: true, signal: abort.signal,
    }).then((response) => {
      if (response.status !== 200) throw response.status;
      return response.json();
    }).finally(() => clearTimeout(timeout));
  }

  // Finds `from` in any format (+1 numbers with or without the 1); puts `to`'s digits in its place.
  function rule(from, to) {
    const d = from.slice(1);
    const nanp = d.length === 11 && d[0] === "1";
    const pattern = (nanp ? "(?:1" + SEP + ")?" : "") + d.slice(nanp ? 1 : 0).split("").join(SEP);
    return { re: new RegExp(pattern, "g"), from: d, to: to.slice(1), number: to };
  }

  function rewrite(found, r) {
    if (r.to.length !== r.from.length) return r.number; // another length: write it whole
    let i = r.to.length, out = "";
    for (let k = found.length; k--;) out = (/\d/.test(found[k]) ? r.to[--i] : found[k]) + out;
    return out;
  }

  function replace(text, list) {
    for (const r of /\d/.test(text) ? list : []) {
      text = text.replace(r.re, (found, at, all) =>
        // Part of a longer run of digits: not ours.
        /\d/.test(all.charAt(at - 1) + all.charAt(at + found.length)) ? found : rewrite(found, r));
    }
    return text;
  }

  const skipped = (el) => !el || el.closest(SKIP) || el.isContentEditable;

  function swap(node, list) {
    const text = node.nodeType === 3;
    const value = text ? node.nodeValue : node.getAttribute("href");
    if (!value || (!text && !/^\s*(tel|callto):/i.test(value))) return;
    const next = replace(value, list);
    if (next === value) return;
    if (text) node.nodeValue = next; else node.setAttribute("href", next);
  }

  function swapTree(root, list) {
    const element = root.nodeType === 1;
    if (!list.length || skipped(element ? root : root.parentElement)) return;
    if (root.nodeType === 3 || element) swap(root, list);
    if (!element) return;
    const walker = document.createTreeWalker(root, 5 /* elements and text */, {
      acceptNode: (n) => (n.nodeType === 1 && (n.matches(SKIP) || n.isContentEditable) ? 2 : 1),
    });
    for (let n; (n = walker.nextNode());) swap(n, list);
  }

  // Each target, and the number shown before for it, becomes the number now held.
  function apply(swaps) {
    const now = [];
    for (const s of Array.isArray(swaps) ? swaps : []) {
      if (!s || !E164.test(s.target) || !E164.test(s.number) || numbers[s.target] === s.number) continue;
      now.push(rule(s.target, s.number));
      if (numbers[s.target]) now.push(rule(numbers[s.target], s.number));
      numbers[s.target] = s.number;
    }
    if (!now.length) return;
    rules = Object.keys(numbers).map((t) => rule(t, numbers[t]));
    observer = observer || new MutationObserver(guard((records) => {
      for (const r of records) {
        if (r.type === "childList") r.addedNodes.forEach((n) => swapTree(n, rules));
        else swapTree(r.target, rules);
      }
      observer.takeRecords(); // our own changes: no loop
    }));
    observer.takeRecords();
    swapTree(document.documentElement, now);
    observer.takeRecords();
    observer.observe(document.documentElement, {
      childList: true, subtree: true, characterData: true, attributeFilter: ["href"],
    });
  }

  const visible = () => document.visibilityState !== "hidden";

  function schedule() {
    clearTimeout(timer);
    if (!stopped && visible()) timer = setTimeout(guard(beat), period);
  }

  function beat() {
    if (stopped || !visible()) return;
    schedule();
    post("/dni/heartbeat", { key, visitor, visit }).then(guard((answer) => apply(answer.swaps)),
      guard((error) => {
        // Refused: stop. Rate limited or network down: go on.
        if (error >= 400 && error < 500 && error !== 429) stopped = true;
      })).catch(noop);
  }

  function start() {
    let tag = document.currentScript;
    if (!tag || !tag.getAttribute("data-key")) {
      const all = document.querySelectorAll('script[src$="/dni.js"][data-key]');
      tag = all[all.length - 1];
    }
    if (!tag || !/^https?:$/.test(location.protocol)) return;
    key = tag.getAttribute("data-key");
    origin = new URL(tag.src, location.href).origin;
    // A prerendered page may never be seen: no number until it is.
    if (document.prerendering) {
      document.addEventListener("prerenderingchange", guard(send), { once: true });
    } else send();
  }

  function send() {
    visitor = loadVisitor();
    post("/dni/visits", {
      key, visitor, page: location.href.slice(0, 2048), referrer: document.referrer.slice(0, 2048),
      device: device(), unbounce: unbounce(),
    }).then(guard((answer) => {
      keepVisitor(answer.visitor);
      apply(answer.swaps);
      if (typeof answer.visit !== "string" || !answer.visit) return;
      visit = answer.visit;
      const seconds = Number(answer.heartbeat_seconds);
      if (seconds >= 1 && seconds <= 86400) period = seconds * 1000;
      const change = () => (visible() ? beat() : clearTimeout(timer));
      document.addEventListener("visibilitychange", guard(change));
      schedule();
    })).catch(noop);
  }

  guard(start)();
})();
