"""Human-readable text of an explanation (the JSON `meshcore._fastpath.explain` returns)."""

from __future__ import annotations

from typing import Any


def _q(value: Any) -> str:
    return '"' + str(value) + '"'


def _chain(chain: dict[str, Any]) -> list[str]:
    where = "default_filter_chain" if chain["default"] else f"filter_chains[{chain['index']}]"
    name = f" {_q(chain['name'])}" if chain["name"] else ""
    fields = " ".join(f"{k}={v}" for k, v in chain["match"].items()) or "(empty match)"
    tls = ", terminates TLS" if chain["terminates_tls"] else ""
    return [
        f"Filter chain  {where}{name}: {fields} -> {chain['terminal_filter']}{tls}",
        f"  why: {chain['why']}",
    ]


def _condition(c: dict[str, Any]) -> str:
    mark = "ok  " if c["matched"] else "FAIL"
    value = c["request_value"]
    seen = "absent" if value is None else repr(value)
    return f"      {mark} {c['field']}: {c['rule']}  (request: {seen})"


def _routes(data: dict[str, Any]) -> list[str]:
    lines = ["Routes checked (in order, first match wins)"]
    for r in data.get("routes", []):
        name = f" {_q(r['name'])}" if r["name"] else ""
        if r["matched"]:
            tag = "<- MATCHED"
        elif r["near_miss"]:
            failing = [c["field"] for c in r["conditions"] if not c["matched"]]
            tag = f"near miss: the path matched, {', '.join(failing)} did not"
        else:
            tag = "path does not match"
        lines.append(f"  routes[{r['index']}]{name} {r['match']}  {tag}")
        if r["matched"] or r["near_miss"]:
            lines += [_condition(c) for c in r["conditions"]]
    skipped = data.get("routes_not_checked", 0)
    if skipped:
        lines.append(f"  ({skipped} later route(s) not checked)")
    return lines


def _forward(a: dict[str, Any]) -> list[str]:
    lines = []
    if a["weighted"]:
        lines.append("Action        weighted_clusters: a weighted random choice per request")
        for c in a["clusters"]:
            lines.append(f"  {_q(c['name'])} weight {c['weight']}: p = {c['probability']:.4g}")
        picked = a.get("picked")
        if picked:
            lines.append(
                f"  with random value {picked['random']}: {_q(picked['cluster'])} "
                f"(choice {picked['choice']})"
            )
    else:
        lines.append(f"Action        forward to cluster {_q(a['clusters'][0]['name'])}")
    if a["prefix_rewrite"]:
        rw = a["prefix_rewrite"]
        lines.append(f"  prefix_rewrite: {rw['from']} -> {rw['to']}")
    lines.append(f"  upstream path: {a['upstream_path']}")
    if a["host_rewrite"]:
        lines.append(f"  host_rewrite_literal: host becomes {_q(a['host_rewrite'])}")
    t = a["timeouts"]
    route = f"{t['route_ms']} ms" if t["route_ms"] else "disabled"
    idle = f"{t['idle']['ms']} ms" if t["idle"]["ms"] else "disabled"
    lines.append(f"  timeout: {route} ({t['route_from']})")
    lines.append(f"  idle timeout: {idle} ({t['idle']['from']})")
    if t["request_ms"]:
        lines.append(
            f"  request timeout: {t['request_ms']} ms (connection manager request_timeout)"
        )
    retry = a.get("retry_policy")
    if retry:
        per_try = (
            f", per_try_timeout {retry['per_try_timeout_ms']} ms"
            if retry["per_try_timeout_ms"]
            else ""
        )
        lines.append(
            f"  retry policy: retry_on {','.join(retry['retry_on']) or '(none)'}, "
            f"num_retries {retry['num_retries']}{per_try}, back-off "
            f"{retry['base_interval_ms']}..{retry['max_interval_ms']} ms"
        )
    else:
        lines.append("  retry policy: none (neither the route nor its virtual host sets one)")
    if a.get("hash"):
        lines.append(f"  request hash (hash_policy, for RING_HASH/MAGLEV host choice): {a['hash']}")
    for m in a.get("mirrors", []):
        lines.append(f"  mirrored to {_q(m['cluster'])} (fraction {m['fraction']:g})")
    return lines


def render_text(data: dict[str, Any]) -> str:
    """The explanation as lines of text."""
    lines: list[str] = []
    req = data.get("request")
    ls = data["listener"]
    lines.append(
        f"Listener      {_q(ls['name'])} {ls['address']}:{ls['port']} (chosen: {ls['chosen_by']})"
    )
    conn = data["connection"]
    tls = "TLS" if conn["tls"] else "plain TCP"
    extra = f", SNI {conn['sni']}" if conn["sni"] else ""
    extra += f", ALPN {','.join(conn['alpn'])}" if conn["alpn"] and conn["tls"] else ""
    lines.append(f"  connection: {conn['source']} -> {conn['destination']}, {tls}{extra}")
    lines += [f"  note: {n}" for n in conn["notes"]]
    if data.get("filter_chain"):
        lines += _chain(data["filter_chain"])
    if req:
        lines.append(
            f"Request       {req['method']} {req['scheme']}://{req['routed_authority']}"
            f"{req['routed_path']} (connection manager {_q(req['connection_manager'])})"
        )
        for name, value in req["headers"]:
            lines.append(f"  {name}: {value}")
        lines += [f"  note: {n}" for n in req["notes"]]
    if data.get("http_filters"):
        names = ", ".join(f"{f['name']} ({f['type']})" for f in data["http_filters"])
        lines.append(f"HTTP filters  {names}")
        v = data.get("filters_verdict")
        if v:
            verdict = v["outcome"]
            if v["status"]:
                verdict += f" {v['status']} ({v['details']})"
            if v["delay_ms"]:
                verdict += f", delay {v['delay_ms']} ms"
            lines.append(f"  verdict when run once here: {verdict}")
            lines += [f"  caveat: {c}" for c in v["caveats"]]
    if "virtual_host" in data:
        vh = data["virtual_host"]
        if vh:
            lines.append(
                f"Virtual host  {_q(vh['name'])}: domain {_q(vh['matched_domain'])} "
                f"({vh['match_kind']}) of {vh['domains']}"
            )
            lines += _routes(data)
        else:
            lines.append("Virtual host  none matches the authority")
    action = data.get("action")
    if action:
        if action["kind"] == "forward":
            lines += _forward(action)
        elif action["kind"] == "redirect":
            lines.append(f"Action        redirect {action['status']} to {action['location']}")
        else:
            body = f" body {action['body']!r}" if action["body"] else ""
            lines.append(f"Action        direct_response {action['status']}{body}")
    out = data["outcome"]
    status = f" [{out['status']}]" if out["status"] else ""
    lines.append(f"Outcome       {out['kind']}{status}: {out['summary']}")
    return "\n".join(lines) + "\n"
