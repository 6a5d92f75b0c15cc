#!/usr/bin/env sh
# Vulnerability audit of the pinned packages: requirements-dev.txt (which includes requirements.txt) and every
# package they pull in, resolved by pip without installing anything, checked by a pinned pip-audit that lives in a
# throw-away virtual environment (so its own packages stay out of the project's). Where pip-audit's service
# (AUDIT_SERVICE: pypi, the default, or osv) skips a package, PyPI's project page is asked instead; its advisory list
# covers only the newest release, so a package pinned below that stays unaudited.
# Exit: 0 nothing found, 1 vulnerabilities found, 2 set-up failed, 3 advisory data not reached for some packages.
# Report: reports/audit.json.
set -eu
cd "$(dirname "$0")/.."
PIP_AUDIT=pip-audit==2.10.1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/audit.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "audit: $1" >&2; exit "$2"; }

python -m venv "$tmp/venv" || fail "could not create a virtual environment" 2
"$tmp/venv/bin/python" -m pip install -q "$PIP_AUDIT" 2>"$tmp/err" ||
    { cat "$tmp/err" >&2; fail "could not install $PIP_AUDIT" 2; }
"$tmp/venv/bin/python" -m pip install -q --dry-run --ignore-installed --report "$tmp/resolved.json" \
    -r requirements-dev.txt 2>"$tmp/err" || { cat "$tmp/err" >&2; fail "could not resolve requirements-dev.txt" 2; }
"$tmp/venv/bin/python" -c 'import json, sys
for p in json.load(open(sys.argv[1]))["install"]: print(p["metadata"]["name"] + "==" + p["metadata"]["version"])' \
    "$tmp/resolved.json" >"$tmp/all.txt"

"$tmp/venv/bin/pip-audit" -s "${AUDIT_SERVICE:-pypi}" --no-deps --disable-pip -r "$tmp/all.txt" \
    --progress-spinner off -f json -o "$tmp/pip-audit.json" 2>"$tmp/err" || true
[ -s "$tmp/pip-audit.json" ] || { tail -n 3 "$tmp/err" >&2; fail "pip-audit could not reach its advisory service" 3; }

mkdir -p reports
"$tmp/venv/bin/python" - "$tmp/pip-audit.json" "$tmp/all.txt" "$PIP_AUDIT" "${AUDIT_SERVICE:-pypi}" <<'EOF'
import json, re, sys, urllib.request
deps = json.load(open(sys.argv[1]))["dependencies"]
tool, service = sys.argv[3:]
pins = dict(line.strip().split("==") for line in open(sys.argv[2]))
pins = {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins.items()}
found, unaudited, by_page = [], [], 0
for d in deps:
    if "skip_reason" in d:  # the service gave nothing: PyPI's project page lists the newest release's advisories
        version = pins.get(d["name"], "?")
        try:
            page = json.load(urllib.request.urlopen(f"https://pypi.org/pypi/{d['name']}/json", timeout=30))
        except OSError as e:
            page = {"info": {"version": f"unknown ({e})"}}
        if page["info"]["version"] != version:
            unaudited.append({"name": d["name"], "version": version, "newest": page["info"]["version"]})
            continue
        by_page += 1
        d, seen = {"name": d["name"], "version": version, "source": "pypi.org project page", "vulns": []}, set()
        for v in page.get("vulnerabilities", []):
            if not v.get("withdrawn") and v["id"] not in seen:  # one entry per advisory, not per alias
                seen.update([v["id"], *v.get("aliases", [])])
                d["vulns"].append({"id": v["id"], "aliases": v.get("aliases", []),
                                   "fix_versions": v.get("fixed_in", [])})
    found += [dict(v, name=d["name"], version=d["version"]) for v in d["vulns"]]
audited = len(deps) - len(unaudited)
for v in found:
    print(f"VULNERABLE {v['name']}=={v['version']}: {v['id']} {' '.join(v.get('aliases', []))}"
          f" (fixed in: {', '.join(v['fix_versions']) or 'no fix yet'})")
for u in unaudited:
    print(f"NOT AUDITED {u['name']}=={u['version']} (no advisory data for this version; newest is {u['newest']})")
print(f"{tool} ({service}): {audited} of {len(deps)} packages audited ({by_page} of them through PyPI's project"
      f" pages), {len(found)} vulnerabilities found")
json.dump({"tool": tool, "service": service, "packages": len(deps), "audited": audited,
           "audited_by_project_page": by_page, "vulnerabilities": found, "unaudited": unaudited},
          open("reports/audit.json", "w"), indent=1)
sys.exit(1 if found else 3 if unaudited else 0)
EOF
