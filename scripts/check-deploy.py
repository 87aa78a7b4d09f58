#!/usr/bin/python3
"""Structure checks for audiotag's rendered Kubernetes manifests and Dockerfiles.

Called by scripts/check-deploy.sh with a folder of rendered manifests
(<target>.yaml for base, cpu, gpu, bulk-tagging, seed-models), the
Dockerfiles, `--bin-dir DIR` (the built audiotag and audiotag-server) and
`--docs FILE...`. Prints one line per failed rule and exits 1 if any failed.

Besides the structure rules, every container command line in the rendered
workloads (command + args, or the image ENTRYPOINT + args; exec probes and
hooks too), each Dockerfile's ENTRYPOINT and HEALTHCHECK are run through the
real binaries with `--dry_run`, which parses and validates flags and
arguments exactly as a real run and touches nothing: a flag the binary does
not take fails the check. A `--flagfile` on a ConfigMap volume is given the
rendered ConfigMap's data. `--self-test` also breaks copies of the manifests,
Dockerfiles and docs on purpose and asserts that each rule notices.
"""
import copy
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

import yaml

SERVER_TARGETS = ("base", "cpu", "gpu")
JOB_TARGETS = ("bulk-tagging", "seed-models")
WORKLOAD_KINDS = ("Deployment", "Job", "StatefulSet", "DaemonSet")
BINARIES = ("audiotag", "audiotag-server")
IMAGE_BIN_DIR = "/usr/local/bin"
# Tools the image does not ship; docs must use `audiotag health` / `models`.
FOREIGN_TOOLS = ("grpcurl", "grpc_health_probe")


class Checker:
    def __init__(self):
        self.errors = []

    def expect(self, cond, where, msg):
        if not cond:
            self.errors.append(f"{where}: {msg}")
        return bool(cond)


def load(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(docs, kind, name=None):
    return [d for d in docs if d.get("kind") == kind
            and (name is None or d["metadata"]["name"] == name)]


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def parse_flagfile(text):
    flags = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"--([A-Za-z0-9_]+)=(.*)", line)
        flags[m.group(1) if m else line] = m.group(2) if m else None
    return flags


def flag_value(args, *names):
    """Value of --name=value or --name value in an argument list."""
    for i, a in enumerate(args):
        for n in names:
            if a.startswith(f"--{n}="):
                return a.split("=", 1)[1]
            if a == f"--{n}" and i + 1 < len(args):
                return args[i + 1]
    return None


def scaled(value, total):
    """An int-or-percent PDB field for `total` pods (percentages round up)."""
    if isinstance(value, str) and value.endswith("%"):
        return -(-int(value[:-1]) * total // 100)
    return int(value)


def disruptions_allowed(pdb_spec, replicas):
    if "maxUnavailable" in pdb_spec:
        return min(replicas, scaled(pdb_spec["maxUnavailable"], replicas))
    if "minAvailable" in pdb_spec:
        return max(0, replicas - scaled(pdb_spec["minAvailable"], replicas))
    return replicas


def prestop_seconds(container):
    pre = (container.get("lifecycle") or {}).get("preStop") or {}
    if "sleep" in pre:
        return int(pre["sleep"].get("seconds", 0))
    cmd = (pre.get("exec") or {}).get("command") or []
    if cmd and os.path.basename(cmd[0]) == "sleep" and len(cmd) == 2:
        return int(cmd[1])
    if len(cmd) == 3 and cmd[1] == "-c":
        m = re.search(r"\bsleep\s+(\d+)", cmd[2])
        if m:
            return int(m.group(1))
    return 0


def check_pod_security(c, where, pod_spec, tag_required):
    psc = pod_spec.get("securityContext") or {}
    c.expect(pod_spec.get("automountServiceAccountToken") is False, where,
             "automountServiceAccountToken should be false (no API access needed)")
    for ctr in pod_spec.get("initContainers", []) + pod_spec.get("containers", []):
        w = f"{where} container {ctr['name']}"
        csc = ctr.get("securityContext") or {}
        non_root = csc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        c.expect(non_root is True, w, "must set runAsNonRoot: true")
        c.expect(uid is not None and uid != 0, w, "must run as a non-zero runAsUser")
        c.expect(csc.get("allowPrivilegeEscalation") is False, w,
                 "allowPrivilegeEscalation must be false")
        c.expect(csc.get("readOnlyRootFilesystem") is True, w,
                 "readOnlyRootFilesystem must be true")
        c.expect("ALL" in ((csc.get("capabilities") or {}).get("drop") or []), w,
                 "capabilities must drop ALL")
        c.expect(not csc.get("privileged"), w, "must not be privileged")
        res = ctr.get("resources") or {}
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                c.expect(r in (res.get(part) or {}), w, f"resources.{part}.{r} missing")
        image = ctr.get("image", "")
        c.expect(not image.endswith(":latest"), w, f"image {image} uses :latest")
        if tag_required:
            last = image.rsplit("/", 1)[-1]
            c.expect(":" in last or "@" in image, w, f"image {image} has no tag or digest")


def check_volumes(c, where, docs, pod_spec, external_pvcs=()):
    names = {v["name"]: v for v in pod_spec.get("volumes", [])}
    for ctr in pod_spec.get("containers", []):
        for m in ctr.get("volumeMounts", []):
            c.expect(m["name"] in names, where, f"volumeMount {m['name']} has no volume")
    for v in names.values():
        if "configMap" in v:
            cm = v["configMap"]["name"]
            c.expect(find(docs, "ConfigMap", cm), where, f"ConfigMap {cm} not rendered")
        if "persistentVolumeClaim" in v:
            pvc = v["persistentVolumeClaim"]["claimName"]
            c.expect(find(docs, "PersistentVolumeClaim", pvc) or pvc in external_pvcs,
                     where, f"PVC {pvc} not rendered")


def check_server(c, target, docs):
    where = target
    deps = find(docs, "Deployment")
    if not c.expect(len(deps) == 1, where, f"expected one Deployment, found {len(deps)}"):
        return
    dep = deps[0]
    name = dep["metadata"]["name"]
    spec = dep["spec"]
    tpl = spec["template"]
    pod = tpl["spec"]
    labels = tpl["metadata"].get("labels", {})
    where = f"{target} Deployment/{name}"
    c.expect(selects(spec["selector"].get("matchLabels", {}), labels), where,
             "selector does not match the pod template labels")
    check_pod_security(c, where, pod, tag_required=target != "base")
    check_volumes(c, where, docs, pod)

    ctrs = {x["name"]: x for x in pod["containers"]}
    if not c.expect("server" in ctrs, where, "no container named server"):
        return
    srv = ctrs["server"]
    ports = {p.get("name"): p["containerPort"] for p in srv.get("ports", [])}
    c.expect("grpc" in ports and "metrics" in ports, where,
             "server must name its ports grpc and metrics")

    # Flags come from the ConfigMap through --flagfile.
    args = srv.get("args", [])
    flagfile = flag_value(args, "flagfile")
    flags = {}
    if c.expect(flagfile, where, "server args must pass --flagfile"):
        mount = next((m for m in srv.get("volumeMounts", [])
                      if flagfile.startswith(m["mountPath"].rstrip("/") + "/")), None)
        if c.expect(mount, where, f"{flagfile} is not on any volumeMount"):
            vol = next(v for v in pod["volumes"] if v["name"] == mount["name"])
            key = flagfile[len(mount["mountPath"].rstrip("/")) + 1:]
            cms = find(docs, "ConfigMap", (vol.get("configMap") or {}).get("name"))
            if c.expect(cms and key in cms[0].get("data", {}), where,
                        f"flagfile {flagfile} is not a key of a rendered ConfigMap"):
                flags = parse_flagfile(cms[0]["data"][key])
    for f in flags:
        c.expect(f not in ("host", "model_repository"), where,
                 f"--{f} belongs to the image ENTRYPOINT, not the flagfile")
    grpc_port = int(flags.get("port", 50051))
    metrics_port = int(flags.get("metrics_port", 9464))
    grace = float(flags.get("grace_period_seconds", 30))
    c.expect(ports.get("grpc") == grpc_port, where,
             f"containerPort grpc {ports.get('grpc')} != --port {grpc_port}")
    c.expect(ports.get("metrics") == metrics_port, where,
             f"containerPort metrics {ports.get('metrics')} != --metrics_port {metrics_port}")

    # Liveness (and startup, which gates it) ask whether the process serves
    # gRPC: service "liveness". Readiness asks whether the required models
    # are ready: service "". A liveness probe on readiness restarts a pod
    # with an empty or broken repository forever.
    for probe, service in (("startupProbe", "liveness"), ("readinessProbe", ""),
                           ("livenessProbe", "liveness")):
        p = srv.get(probe)
        if c.expect(p, where, f"{probe} missing"):
            g = p.get("grpc")
            c.expect(g and g.get("port") == grpc_port and (g.get("service") or "") == service,
                     where, f"{probe} must be a native gRPC probe on port {grpc_port} "
                     f"with service \"{service}\"")
    startup = srv.get("startupProbe") or {}
    c.expect(startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3) >= 120,
             where, "startupProbe should allow at least 120 s for model loading")

    pre = prestop_seconds(srv)
    c.expect(pre > 0, where, "preStop sleep missing (endpoints must drain before SIGTERM)")
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    c.expect(tgps >= grace + pre, where,
             f"terminationGracePeriodSeconds {tgps} < grace {grace:g} + preStop {pre}")

    ann = tpl["metadata"].get("annotations", {})
    c.expect(ann.get("prometheus.io/scrape") == "true"
             and ann.get("prometheus.io/port") == str(metrics_port), where,
             f"pod template needs prometheus.io/scrape and port {metrics_port} annotations")
    for d in docs:
        other = (d.get("metadata") or {}).get("annotations") or {}
        c.expect(not any(k.startswith("prometheus.io/") for k in other),
                 f"{target} {d.get('kind')}/{d['metadata'].get('name')}",
                 "prometheus.io scrape annotations belong on the pod template only "
                 "(on a Service too, the usual configs scrape twice)")

    models = next((m for m in srv.get("volumeMounts", []) if m["mountPath"] == "/models"), None)
    c.expect(models and models.get("readOnly") is True, where,
             "model repository must be mounted read-only at /models")

    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    c.expect(str(rolling.get("maxUnavailable", "25%")) in ("0", "0%"), where,
             "rolling updates should keep maxUnavailable 0")

    # Services.
    headless = [s for s in find(docs, "Service") if s["spec"].get("clusterIP") == "None"]
    c.expect(len(headless) == 1, target, "expected exactly one headless Service")
    for s in find(docs, "Service"):
        w = f"{target} Service/{s['metadata']['name']}"
        c.expect(selects(s["spec"].get("selector", {}), labels), w,
                 "selector does not select the Deployment's pods")
        for p in s["spec"].get("ports", []):
            tp = p.get("targetPort", p["port"])
            c.expect(tp in ports or tp in ports.values(), w,
                     f"targetPort {tp} is not a server port")
    for s in headless:
        c.expect(any(p.get("targetPort") in ("grpc", grpc_port) for p in s["spec"]["ports"]),
                 f"{target} Service/{s['metadata']['name']}", "headless Service must expose grpc")

    # HPA.
    hpas = find(docs, "HorizontalPodAutoscaler")
    if c.expect(len(hpas) == 1, target, "expected one HorizontalPodAutoscaler"):
        h = hpas[0]
        w = f"{target} HPA/{h['metadata']['name']}"
        ref = h["spec"]["scaleTargetRef"]
        c.expect(h["apiVersion"] == "autoscaling/v2", w, "use autoscaling/v2")
        c.expect(ref.get("kind") == "Deployment" and ref.get("name") == name
                 and ref.get("apiVersion") == "apps/v1", w, f"must target Deployment/{name}")
        metrics = h["spec"].get("metrics", [])
        c.expect(any(m["type"] == "Resource" and m["resource"]["name"] == "cpu"
                     for m in metrics), w, "needs a cpu Resource metric")
        c.expect(any(m["type"] == "Pods" and m["pods"]["metric"]["name"] == "audiotag_queue_depth"
                     for m in metrics), w, "needs a Pods metric on audiotag_queue_depth")
        lo, hi = h["spec"].get("minReplicas", 1), h["spec"]["maxReplicas"]
        c.expect(1 <= lo <= hi, w, f"minReplicas {lo} / maxReplicas {hi} inconsistent")
        replicas = spec.get("replicas", 1)
        c.expect(lo <= replicas <= hi, where,
                 f"replicas {replicas} outside the HPA's minReplicas {lo} .. maxReplicas {hi}")
    else:
        lo = spec.get("replicas", 1)

    # PDB.
    pdbs = find(docs, "PodDisruptionBudget")
    if c.expect(len(pdbs) == 1, target, "expected one PodDisruptionBudget"):
        p = pdbs[0]
        w = f"{target} PDB/{p['metadata']['name']}"
        c.expect(p["apiVersion"] == "policy/v1", w, "use policy/v1")
        c.expect(selects(p["spec"]["selector"].get("matchLabels", {}), labels), w,
                 "selector does not select the Deployment's pods")
        c.expect("maxUnavailable" in p["spec"] or "minAvailable" in p["spec"], w,
                 "needs maxUnavailable or minAvailable")
        # At the HPA's minimum: a drain must be able to evict a pod, and with
        # two or more replicas it must leave one serving.
        allowed = disruptions_allowed(p["spec"], lo)
        c.expect(allowed >= 1, w,
                 f"with {lo} replica(s) the PDB allows no eviction: it would block "
                 "every node drain (use maxUnavailable: 1)")
        c.expect(lo < 2 or allowed < lo, w,
                 f"with {lo} replicas the PDB lets a drain evict all of them")

    gpu_limit = (srv.get("resources") or {}).get("limits", {}).get("nvidia.com/gpu")
    if target == "gpu":
        c.expect(gpu_limit is not None and int(gpu_limit) >= 1, where,
                 "GPU overlay must set limits nvidia.com/gpu")
        c.expect(pod.get("tolerations") and pod.get("nodeSelector"), where,
                 "GPU overlay needs nodeSelector and tolerations for GPU nodes")
        c.expect(srv["image"].split(":")[-1].endswith("gpu"), where,
                 "GPU overlay must use the GPU image (tag ending in gpu)")
    else:
        c.expect(gpu_limit is None, where, "only the GPU overlay requests nvidia.com/gpu")
    return {"namespace": dep["metadata"].get("namespace"),
            "headless": headless[0]["metadata"]["name"] if headless else None,
            "grpc_port": grpc_port}


def check_jobs(c, target, docs, server):
    jobs = find(docs, "Job")
    c.expect(jobs, target, "no Job rendered")
    for job in jobs:
        spec = job["spec"]
        pod = spec["template"]["spec"]
        where = f"{target} Job/{job['metadata']['name']}"
        check_pod_security(c, where, pod, tag_required=True)
        check_volumes(c, where, docs, pod, external_pvcs=("audiotag-models",))
        c.expect(pod.get("restartPolicy") in ("Never", "OnFailure"), where,
                 "restartPolicy must be Never or OnFailure")
        c.expect("backoffLimit" in spec or "backoffLimitPerIndex" in spec, where,
                 "set backoffLimit (or backoffLimitPerIndex on k8s >= 1.29)")
        if target != "bulk-tagging":
            continue
        c.expect(spec.get("completionMode") == "Indexed", where, "completionMode must be Indexed")
        completions = spec.get("completions")
        ctr = pod["containers"][0]
        args = list(ctr.get("command", [])) + list(ctr.get("args", []))
        c.expect("bulk" in args, where, "container must run `audiotag bulk`")
        shards = flag_value(args, "shard_count")
        c.expect(shards is not None and completions is not None
                 and int(shards) == int(completions), where,
                 f"--shard_count {shards} must equal completions {completions}")
        if "podFailurePolicy" in spec:
            c.expect(pod.get("restartPolicy") == "Never", where,
                     "podFailurePolicy needs restartPolicy: Never")
            for rule in spec["podFailurePolicy"].get("rules", []):
                if rule.get("action") == "FailIndex":
                    c.expect("backoffLimitPerIndex" in spec, where,
                             "action FailIndex needs backoffLimitPerIndex")
        c.expect(spec.get("parallelism", 1) <= (completions or 0), where,
                 "parallelism must not exceed completions")
        index = flag_value(args, "shard-index", "shard_index")
        c.expect(index is None or "JOB_COMPLETION_INDEX" in index, where,
                 "shard index must come from JOB_COMPLETION_INDEX")
        for f in ("output", "server"):
            c.expect(flag_value(args, f), where, f"--{f} missing")
        after = args[args.index("bulk") + 1:] if "bulk" in args else []
        c.expect(flag_value(args, "manifest") or any(not a.startswith("-") for a in after),
                 where, "no manifest (--manifest=FILE or the argument after bulk)")
        target_addr = flag_value(args, "server") or ""
        ns = job["metadata"].get("namespace")
        if server:
            want = (f"dns:///{server['headless']}.{ns}.svc.cluster.local:"
                    f"{server['grpc_port']}")
            c.expect(target_addr == want, where,
                     f"--server {target_addr} should be {want} (headless Service, same namespace)")
            c.expect(ns == server["namespace"], where,
                     f"namespace {ns} differs from the server overlay's {server['namespace']}")
        out = flag_value(args, "output")
        mounts = {m["mountPath"]: m for m in ctr.get("volumeMounts", [])}
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        m = mounts.get(out)
        c.expect(m and "persistentVolumeClaim" in vols.get(m["name"], {}) and not m.get("readOnly"),
                 where, f"--output {out} must be a writable PVC mount")


DOCKER_FROM = re.compile(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", re.I)


def exec_form(rest):
    """The argv of a JSON exec form, or None."""
    try:
        argv = json.loads(rest)
    except ValueError:
        return None
    return argv if isinstance(argv, list) and all(isinstance(a, str) for a in argv) else None


def check_dockerfile(c, where, text, required_user_uid=10001):
    """Checks one Dockerfile; returns {"entrypoint": argv, "healthcheck": argv}."""
    info = {"entrypoint": None, "healthcheck": None}
    # Join continuation lines, drop comments.
    logical, buf = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        logical.append(buf + s)
        buf = ""
    args, stages, final = {}, [], None
    stage_lines = []
    for line in logical:
        word = line.split(None, 1)[0].upper()
        if word == "ARG" and not stages:
            kv = line.split(None, 1)[1]
            k, _, v = kv.partition("=")
            args[k] = v
        if word == "FROM":
            m = DOCKER_FROM.match(line)
            image, alias = m.group(1), m.group(2)
            stages.append(alias)
            stage_lines.append([])
            # Resolve ${ARG} defaults; an image built from a stage name is fine.
            resolved = re.sub(r"\$\{?(\w+)\}?", lambda mm: args.get(mm.group(1), ""), image)
            if resolved in stages[:-1] or image in stages[:-1]:
                pass
            elif re.fullmatch(r"[\w.-]+-\$\{?\w+\}?", image):
                c.expect(any(s and s.startswith(image.split("$")[0]) for s in stages[:-1]),
                         where, f"FROM {image} names no earlier stage")
            else:
                name = resolved.rsplit("/", 1)[-1]
                c.expect("@sha256:" in resolved or (":" in name and not name.endswith(":latest")),
                         where, f"FROM {image} (= {resolved}) must pin a tag or digest, not latest")
        if stages:
            stage_lines[-1].append(line)
    if not c.expect(stages, where, "no FROM"):
        return info
    final = stage_lines[-1]
    users = [l.split(None, 1)[1] for l in final if l.split(None, 1)[0].upper() == "USER"]
    c.expect(users, where, "final stage must set USER")
    if users:
        u = users[-1].split(":")[0]
        c.expect(u not in ("root", "0") and (not u.isdigit() or int(u) == required_user_uid),
                 where, f"final USER {users[-1]} must be the non-root uid {required_user_uid}")
    c.expect(any("install-deps.sh --runtime" in l for l in final), where,
             "final stage must install its libraries with scripts/install-deps.sh --runtime")
    c.expect(any("install-deps.sh" in l and "--runtime" not in l for l in logical), where,
             "builder must install with scripts/install-deps.sh")
    for l in logical:
        c.expect(not re.search(r"\b(curl|wget)\b[^|]*\|\s*(sudo\s+)?(ba|z|da)?sh\b", l), where,
                 f"pipes a download into a shell: {l[:80]}")
        c.expect(not re.match(r"ADD\s+https?://", l, re.I), where,
                 "ADD of a URL; download with a checked RUN instead")
    exposes = " ".join(l for l in final if l.upper().startswith("EXPOSE"))
    c.expect("50051" in exposes and "9464" in exposes, where, "EXPOSE 50051 9464 missing")
    entry = [l for l in final if l.upper().startswith("ENTRYPOINT")]
    c.expect(entry and entry[-1].split(None, 1)[1].startswith("["), where,
             "ENTRYPOINT must use the exec (JSON) form so SIGTERM reaches the server")
    if entry:
        c.expect("--host=0.0.0.0" in entry[-1] and "--model_repository=/models" in entry[-1],
                 where, "ENTRYPOINT must pass --host=0.0.0.0 --model_repository=/models")
        info["entrypoint"] = exec_form(entry[-1].split(None, 1)[1])
    # A HEALTHCHECK with a probe the image has: the audiotag CLI.
    checks = [l for l in final if l.split(None, 1)[0].upper() == "HEALTHCHECK"]
    if c.expect(checks, where, "final stage needs a HEALTHCHECK (`audiotag health`)"):
        m = re.search(r"\bCMD\s+(.*)$", checks[-1])
        argv = exec_form(m.group(1)) if m else None
        if c.expect(argv and os.path.basename(argv[0]) == "audiotag" and argv[1:2] == ["health"],
                    where, "HEALTHCHECK must run CMD [\"/usr/local/bin/audiotag\", \"health\", ...] "
                    "(exec form; grpc_health_probe and grpcurl are not in the image)"):
            info["healthcheck"] = argv
            copies = [l for l in final if l.split(None, 1)[0].upper() == "COPY"]
            c.expect(any(re.search(r"/audiotag(\s|$)", l) and os.path.dirname(argv[0]) in l
                         for l in copies), where,
                     f"HEALTHCHECK runs {argv[0]} but the final stage does not copy the "
                     "audiotag CLI there")
    return info


def check_docs(c, docs):
    """docs: {path: text}. Commands must use what the image ships."""
    for path, text in docs.items():
        for n, line in enumerate(text.splitlines(), 1):
            for tool in FOREIGN_TOOLS:
                c.expect(not re.search(rf"\b{tool}\b", line), f"{path}:{n}",
                         f"uses {tool}, which neither Debian nor the image provides; "
                         "use `audiotag health` / `audiotag models`")


# ---------------------------------------------------------------------------
# Command lines through the real binaries' --dry_run.

K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand_k8s(arg, env):
    """Kubernetes' $(VAR) expansion in command and args."""
    return K8S_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), arg)


class DryRunner:
    def __init__(self, bin_dir):
        self.bin_dir = bin_dir
        self.tmp = tempfile.TemporaryDirectory(prefix="check-deploy-")
        self.files = 0
        self.cache = {}  # the same command line (and file contents) runs once
        # Binaries built before --dry_run existed: reported, not checked.
        self.unsupported = set()

    def materialize(self, path, pod, ctr, docs):
        """A local copy of a file the pod reads from a ConfigMap volume."""
        for m in ctr.get("volumeMounts", []):
            mount = m["mountPath"].rstrip("/") + "/"
            if not path.startswith(mount):
                continue
            vol = next((v for v in pod.get("volumes", []) if v["name"] == m["name"]), {})
            cms = find(docs, "ConfigMap", (vol.get("configMap") or {}).get("name"))
            key = path[len(mount):]
            if cms and key in (cms[0].get("data") or {}):
                self.files += 1
                local = os.path.join(self.tmp.name, f"{self.files}-{os.path.basename(key)}")
                with open(local, "w", encoding="utf-8") as f:
                    f.write(cms[0]["data"][key])
                return local
        return path

    def check(self, c, where, argv, env=None, pod=None, ctr=None, docs=()):
        if not argv:
            return
        prog = os.path.basename(argv[0])
        if prog in ("sh", "bash", "dash") and len(argv) >= 3 and argv[1].startswith("-") \
                and "c" in argv[1]:
            r = subprocess.run(["/bin/sh", "-n", "-c", argv[2]], capture_output=True, text=True)
            c.expect(r.returncode == 0, where, f"shell script does not parse: {r.stderr.strip()}")
            return
        if prog not in BINARIES:
            return
        c.expect(argv[0] in (prog, f"{IMAGE_BIN_DIR}/{prog}"), where,
                 f"{argv[0]}: the image installs {prog} in {IMAGE_BIN_DIR}")
        local, i = [], 1
        while i < len(argv):
            a = argv[i]
            if a.startswith("--flagfile=") and pod is not None:
                a = "--flagfile=" + self.materialize(a.split("=", 1)[1], pod, ctr, docs)
            elif a == "--flagfile" and pod is not None and i + 1 < len(argv):
                local.append(a)
                i += 1
                a = self.materialize(argv[i], pod, ctr, docs)
            local.append(a)
            i += 1
        binary = os.path.join(self.bin_dir, prog)
        contents = []
        for a in local:
            if a.startswith(self.tmp.name) or a.startswith("--flagfile=" + self.tmp.name):
                with open(a.split("=", 1)[-1], encoding="utf-8") as f:
                    contents.append(f.read())
        key = (prog, tuple(argv[1:]), tuple(contents), tuple(sorted((env or {}).items())))
        if key not in self.cache:
            run_env = dict(os.environ)
            run_env.update(env or {})
            try:
                r = subprocess.run([binary] + local + ["--dry_run"], capture_output=True,
                                   text=True, timeout=60, env=run_env, stdin=subprocess.DEVNULL)
                why = " / ".join(r.stderr.strip().splitlines()[:2]) or \
                    f"exit code {r.returncode}"
                if "Unknown command line flag 'dry_run'" in r.stderr:
                    self.unsupported.add(prog)
                    self.cache[key] = None
                    return
                ok = r.returncode == 0 and r.stdout.strip().endswith("ok")
                self.cache[key] = None if ok else f"rejected by {prog} --dry_run: {why}"
            except (OSError, subprocess.TimeoutExpired) as e:
                self.cache[key] = f"cannot run {binary}: {e}"
        error = self.cache.get(key)
        c.expect(error is None, where, f"`{shlex.join(argv)}` {error}")


def check_commands(c, target, docs, entrypoints, runner):
    """Every command line of the target's workloads through --dry_run."""
    for wl in docs:
        if wl.get("kind") not in WORKLOAD_KINDS:
            continue
        spec = wl["spec"]
        pod = spec["template"]["spec"]
        for ctr in pod.get("initContainers", []) + pod.get("containers", []):
            where = f"{target} {wl['kind']}/{wl['metadata']['name']} container {ctr['name']}"
            env = {e["name"]: str(e["value"]) for e in ctr.get("env", []) if "value" in e}
            if wl["kind"] == "Job" and spec.get("completionMode") == "Indexed":
                env.setdefault("JOB_COMPLETION_INDEX", "0")
            command = ctr.get("command")
            if not command:
                gpu = ctr.get("image", "").split(":")[-1].endswith("gpu")
                command = entrypoints.get("gpu" if gpu else "cpu") or []
                c.expect(command, where, "no command and no image ENTRYPOINT to run")
            argv = [expand_k8s(a, env) for a in list(command) + list(ctr.get("args", []))]
            runner.check(c, where, argv, env, pod, ctr, docs)
            hooks = [(n, ctr.get(n)) for n in ("startupProbe", "readinessProbe", "livenessProbe")]
            hooks += list(((ctr.get("lifecycle") or {}).items()))
            for name, hook in hooks:
                cmd = ((hook or {}).get("exec") or {}).get("command")
                if cmd:
                    runner.check(c, f"{where} {name}", [expand_k8s(a, env) for a in cmd], env,
                                 pod, ctr, docs)


def run_all(rendered, dockerfiles, runner=None, docs=None):
    """dockerfiles: {path: text}; runner: a DryRunner, or None to skip the
    command lines; docs: {path: text}."""
    c = Checker()
    server = None
    for t in SERVER_TARGETS:
        info = check_server(c, t, rendered[t])
        if t == "cpu":
            server = info
    for t in JOB_TARGETS:
        check_jobs(c, t, rendered[t], server)
    entrypoints = {}
    for path, text in dockerfiles.items():
        info = check_dockerfile(c, path, text)
        kind = "gpu" if path.endswith(".gpu") else "cpu"
        entrypoints[kind] = info["entrypoint"]
        if runner:
            runner.check(c, f"{path} ENTRYPOINT", info["entrypoint"])
            runner.check(c, f"{path} HEALTHCHECK", info["healthcheck"])
    if runner:
        if not entrypoints:
            entrypoints = {"cpu": ["/usr/local/bin/audiotag-server", "--host=0.0.0.0",
                                   "--model_repository=/models"]}
        entrypoints.setdefault("gpu", entrypoints.get("cpu"))
        for t in SERVER_TARGETS + JOB_TARGETS:
            check_commands(c, t, rendered[t], entrypoints, runner)
    check_docs(c, docs or {})
    return c.errors


def self_test(rendered, dockerfiles, docs, runner):
    """Each mutation must produce at least one error containing its phrase."""
    def dep(docs):
        return find(docs, "Deployment")[0]

    def srv(docs):
        return dep(docs)["spec"]["template"]["spec"]["containers"][0]

    def job(docs):
        return find(docs, "Job")[0]

    def job_args(docs):
        return job(docs)["spec"]["template"]["spec"]["containers"][0]["args"]

    def swap(args, old, new):
        args[:] = [new if a == old else a for a in args]

    mutations = [
        ("cpu", lambda d: srv(d)["securityContext"].update(runAsNonRoot=False), "runAsNonRoot"),
        ("cpu", lambda d: srv(d)["readinessProbe"].update(grpc=None, tcpSocket={"port": 50051}),
         "native gRPC probe"),
        ("cpu", lambda d: srv(d)["livenessProbe"]["grpc"].pop("service"),
         "livenessProbe must be a native gRPC probe on port 50051 with service \"liveness\""),
        ("cpu", lambda d: srv(d)["readinessProbe"]["grpc"].update(service="liveness"),
         "readinessProbe must be"),
        ("cpu", lambda d: dep(d)["spec"]["template"]["spec"].update(
            terminationGracePeriodSeconds=30), "terminationGracePeriodSeconds"),
        ("cpu", lambda d: [s["spec"].update(clusterIP="10.0.0.1") for s in find(d, "Service")],
         "headless"),
        ("cpu", lambda d: find(d, "Service", "audiotag")[0]["metadata"].update(
            annotations={"prometheus.io/scrape": "true"}), "scrape twice"),
        ("cpu", lambda d: find(d, "HorizontalPodAutoscaler")[0]["spec"]["scaleTargetRef"].update(
            name="other"), "must target"),
        ("cpu", lambda d: find(d, "HorizontalPodAutoscaler")[0]["spec"].update(minReplicas=3),
         "outside the HPA"),
        ("cpu", lambda d: find(d, "PodDisruptionBudget")[0]["spec"]["selector"].update(
            matchLabels={"app": "x"}), "PDB"),
        ("cpu", lambda d: find(d, "PodDisruptionBudget")[0]["spec"].update(maxUnavailable="100%"),
         "evict all"),
        ("gpu", lambda d: (find(d, "PodDisruptionBudget")[0]["spec"].pop("maxUnavailable"),
                           find(d, "PodDisruptionBudget")[0]["spec"].update(minAvailable=1)),
         "block every node drain"),
        ("gpu", lambda d: srv(d)["resources"]["limits"].pop("nvidia.com/gpu"), "nvidia.com/gpu"),
        ("bulk-tagging", lambda d: job(d)["spec"].update(completions=3), "--shard_count"),
        ("bulk-tagging", lambda d: job(d)["spec"].pop("completionMode"), "Indexed"),
        ("bulk-tagging", lambda d: job(d)["spec"].pop("backoffLimitPerIndex"), "FailIndex"),
    ]
    # Through the real binaries: flags they do not take.
    entrypoint = ["/usr/local/bin/audiotag-server", "--host=0.0.0.0",
                  "--model_repository=/models"]
    command_mutations = [
        ("bulk-tagging", lambda d: swap(job_args(d), "--shard_count=4", "--shard-count=4"),
         "--shard-count"),
        ("bulk-tagging", lambda d: job_args(d).append("--no_such_flag=1"), "--no_such_flag"),
        ("cpu", lambda d: srv(d)["args"].append("--no_such_server_flag"),
         "--no_such_server_flag"),
        ("cpu", lambda d: [cm["data"].update(flags=cm["data"]["flags"] + "--no_such_flag=1\n")
                           for cm in find(d, "ConfigMap") if "flags" in cm.get("data", {})],
         "--no_such_flag in the flagfile"),
    ]
    failures = []
    for target, mutate, phrase in mutations:
        broken = copy.deepcopy(rendered)
        mutate(broken[target])
        errs = run_all(broken, {})
        if not any(phrase in e for e in errs):
            failures.append(f"self-test: breaking {target} ({phrase}) was not noticed")
    for target, mutate, flag in command_mutations if runner and not runner.unsupported else []:
        # The binary must reject the mutated command line where it took the
        # shipped one.
        def errors(docs):
            c = Checker()
            check_commands(c, target, docs, {"cpu": entrypoint, "gpu": entrypoint}, runner)
            return set(c.errors)
        broken = copy.deepcopy(rendered[target])
        mutate(broken)
        if not any("--dry_run" in e for e in errors(broken) - errors(rendered[target])):
            failures.append(f"self-test: {flag} in {target} was not rejected by --dry_run")
    # Dockerfiles and docs.
    for path, text in dockerfiles.items():
        for old, new, phrase in (
                ("HEALTHCHECK", "# HEALTHCHECK", "needs a HEALTHCHECK"),
                ('"/usr/local/bin/audiotag", "health"', '"/bin/grpc_health_probe", "-addr=:50051"',
                 "HEALTHCHECK must run")):
            errs = run_all(rendered, {path: text.replace(old, new)})
            if not any(phrase in e for e in errs):
                failures.append(f"self-test: breaking {path} ({phrase}) was not noticed")
    for path, text in docs.items():
        errs = run_all(rendered, {}, None, {path: text + "\ngrpcurl -plaintext x:1 list\n"})
        if not any("uses grpcurl" in e for e in errs):
            failures.append(f"self-test: grpcurl in {path} was not noticed")
    return failures


def main(argv):
    selftest = "--self-test" in argv
    argv = [a for a in argv if a != "--self-test"]
    bin_dir, doc_paths, rest = None, [], []
    i = 1
    while i < len(argv):
        if argv[i] == "--bin-dir" and i + 1 < len(argv):
            bin_dir = argv[i + 1]
            i += 2
        elif argv[i] == "--docs":
            i += 1
            while i < len(argv) and not argv[i].startswith("--"):
                doc_paths.append(argv[i])
                i += 1
        elif argv[i] == "--":
            rest += argv[i + 1:]
            break
        else:
            rest.append(argv[i])
            i += 1
    if not rest:
        print(__doc__)
        return 2
    folder, dockerfile_paths = rest[0], rest[1:]

    def read(path):
        with open(path, encoding="utf-8") as f:
            return f.read()

    rendered = {t: load(os.path.join(folder, f"{t}.yaml"))
                for t in SERVER_TARGETS + JOB_TARGETS}
    dockerfiles = {os.path.relpath(p): read(p) for p in dockerfile_paths}
    docs = {os.path.relpath(p): read(p) for p in doc_paths}
    runner = DryRunner(bin_dir) if bin_dir else None
    errors = run_all(rendered, dockerfiles, runner, docs)
    if selftest:
        errors += self_test(rendered, dockerfiles, docs, runner)
    for e in errors:
        print(f"FAIL {e}")
    for prog in sorted(runner.unsupported if runner else []):
        print(f"check-deploy: SKIP --dry_run: {os.path.join(bin_dir, prog)} has no --dry_run "
              "(built before it existed), so its command lines were not checked",
              file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
