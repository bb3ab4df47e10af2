"""Lints and renders the Helm chart with Helm's own code, and validates what it renders.

Run by tests/helm_chart.rs with the test venv's python. Reads one JSON request on stdin:

    {"chart": "<path>", "kube_version": "1.33.0",
     "cases": [{"name": "...", "release": "...", "namespace": "...", "values": {...},
                "cluster"?: {"<Secret name>": {"<key>": "<value>"}},
                "configmaps"?: {"<ConfigMap name>": {"<key>": "<value>"}}}],
     "rejected": [{"name": "...", "values": {...}}],
     "refused": [<a case>]}

and prints one JSON answer on stdout:

    {"helm": "<Helm SDK version>",
     "cases": {"<name>": {"lint": {...}, "notes": "...",
                          "objects": [{"template", "object", "validation", "decoded"?}]}},
     "rejected": {"<name>": "<Helm's error message>" | null},
     "refused": {"<name>": "<Helm's error message>" | null}}

"rejected" values are checked against values.schema.json only; "refused" values are rendered, for
what the templates refuse with `fail` (what a schema cannot say, such as ids used twice).

Helm comes from PyPI `helm-python-sdk` (Helm v4 as a C library: no helm binary, no cluster; the
`lookup` function returns nothing, as in `helm template`). A case with "cluster" is rendered as an
upgrade against a stand-in Kubernetes API on 127.0.0.1 that serves discovery and those Secrets, so
that `lookup` finds them as it would in a cluster; "configmaps" adds ConfigMaps to it (the
release's previous config). Every built-in object is validated
against the pinned Kubernetes version's JSON schemas (PyPI `kubernetes-validate`, strict: unknown
fields fail). kubernetes-validate has no schema for custom resources, so a ServiceMonitor is
validated against SERVICE_MONITOR_SCHEMA below: the part of the Prometheus Operator's CRD schema
(monitoring.coreos.com/v1) that the chart uses, with unknown fields refused.
"""

import base64
import contextlib
import http.server
import json
import sys
import threading

MISSING = []
try:
    import helm_python as helm
except ImportError as error:
    MISSING.append(f"helm-python-sdk ({error})")
try:
    import kubernetes_validate
except ImportError as error:
    MISSING.append(f"kubernetes-validate ({error})")
try:
    import jsonschema
    import yaml
except ImportError as error:
    MISSING.append(f"jsonschema/PyYAML ({error})")

DURATION = "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {"type": "array"},
    },
}
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector"],
            "properties": {
                "selector": LABEL_SELECTOR,
                "endpoints": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": DURATION},
                        },
                    },
                },
            },
        },
    },
}


def validate(obj, kube_version):
    """"ok", or why the object does not fit its schema."""
    if obj.get("kind") == "ServiceMonitor":
        errors = sorted(jsonschema.Draft7Validator(SERVICE_MONITOR_SCHEMA).iter_errors(obj), key=str)
        return "ok" if not errors else "; ".join(e.message for e in errors)
    try:
        kubernetes_validate.validate(obj, kube_version, strict=True)
        return "ok"
    except kubernetes_validate.ValidationError as error:
        return f"{'.'.join(str(p) for p in error.path)}: {error.message}"
    except Exception as error:  # SchemaNotFoundError, VersionNotSupportedError, ...
        return f"{type(error).__name__}: {error}"


@contextlib.contextmanager
def stand_in_cluster(namespace, secrets, configmaps, kube_version):
    """A kubeconfig for an API server that knows only Secrets and ConfigMaps: discovery, and GET
    of these."""
    major, minor, _ = kube_version.split(".")

    class Api(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            path = self.path.split("?")[0]
            prefix = f"/api/v1/namespaces/{namespace}/secrets/"
            configmap_prefix = f"/api/v1/namespaces/{namespace}/configmaps/"
            if path == "/version":
                self.answer(200, {"major": major, "minor": minor, "gitVersion": f"v{kube_version}"})
            elif path == "/api":
                self.answer(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
            elif path == "/apis":
                self.answer(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
            elif path == "/api/v1":
                self.answer(200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                    {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret",
                     "verbs": ["get", "list"]},
                    {"name": "configmaps", "singularName": "configmap", "namespaced": True,
                     "kind": "ConfigMap", "verbs": ["get", "list"]}]})
            elif path.startswith(prefix) and path[len(prefix):] in secrets:
                name = path[len(prefix):]
                data = {k: base64.b64encode(v.encode()).decode() for k, v in secrets[name].items()}
                self.answer(200, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
                                  "metadata": {"name": name, "namespace": namespace}})
            elif path.startswith(configmap_prefix) and path[len(configmap_prefix):] in configmaps:
                name = path[len(configmap_prefix):]
                self.answer(200, {"apiVersion": "v1", "kind": "ConfigMap", "data": configmaps[name],
                                  "metadata": {"name": name, "namespace": namespace}})
            else:
                self.answer(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "reason": "NotFound", "code": 404, "message": f"{path} not found"})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield (
            "apiVersion: v1\nkind: Config\ncurrent-context: stand-in\n"
            f"clusters: [{{name: stand-in, cluster: {{server: 'http://127.0.0.1:{server.server_address[1]}'}}}}]\n"
            "users: [{name: stand-in, user: {token: stand-in}}]\n"
            f"contexts: [{{name: stand-in, context: {{cluster: stand-in, user: stand-in, namespace: {namespace}}}}}]\n"
        )
    finally:
        server.shutdown()


def render(chart_path, kube_version, case):
    """The case's manifests by template: an install, or with "cluster"/"configmaps" an upgrade
    against the stand-in cluster."""
    with helm.Chart.load(chart_path) as chart:
        if "cluster" in case or "configmaps" in case:
            with stand_in_cluster(case["namespace"], case.get("cluster", {}), case.get("configmaps", {}),
                                  kube_version) as kubeconfig, \
                    helm.Config(kubeconfig_content=kubeconfig, namespace=case["namespace"]) as config:
                return config.render(chart, case["values"], name=case["release"],
                                     namespace=case["namespace"], is_upgrade=True)
        return chart.render(case["values"], name=case["release"], namespace=case["namespace"],
                            is_install=True)


def render_case(chart_path, kube_version, case):
    lint = helm.lint(chart_path, case["values"], strict=True, namespace=case["namespace"],
                     kube_version=f"v{kube_version}")
    manifests = render(chart_path, kube_version, case)
    objects = []
    notes = ""
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            notes = text
            continue
        for obj in yaml.safe_load_all(text):
            if not obj:
                continue
            entry = {"template": template.split("/templates/", 1)[-1], "object": obj,
                     "validation": validate(obj, kube_version)}
            if obj.get("kind") == "Secret":
                entry["decoded"] = {key: base64.b64decode(value).decode()
                                    for key, value in (obj.get("data") or {}).items()}
            objects.append(entry)
    return {"lint": lint, "notes": notes, "objects": objects}


def rejected(chart_path, values):
    with helm.Chart.load(chart_path) as chart:
        try:
            chart.validate_schema(values)
        except helm.HelmValuesError as error:
            return str(error)
    return None


def refused(chart_path, kube_version, case):
    try:
        render(chart_path, kube_version, case)
    except helm.HelmError as error:
        return str(error)
    return None


def main():
    if MISSING:
        print(
            "helm_chart.py: missing Python packages: " + ", ".join(MISSING) + ". They are pinned in "
            "tests/support/testenv.sh; delete the test venv ($OPENMEET_TEST_CACHE/venv or "
            "target/test-env/venv) and run the tests again to reinstall it.",
            file=sys.stderr,
        )
        return 2
    request = json.load(sys.stdin)
    chart, kube_version = request["chart"], request["kube_version"]
    if kube_version not in kubernetes_validate.utils.all_versions():
        print(f"helm_chart.py: kubernetes-validate has no schemas for Kubernetes {kube_version}",
              file=sys.stderr)
        return 2
    answer = {
        "helm": helm.helm_sdk_version(),
        "cases": {case["name"]: render_case(chart, kube_version, case) for case in request["cases"]},
        "rejected": {case["name"]: rejected(chart, case["values"]) for case in request.get("rejected", [])},
        "refused": {case["name"]: refused(chart, kube_version, case) for case in request.get("refused", [])},
    }
    json.dump(answer, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
