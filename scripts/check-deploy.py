#!/usr/bin/python3
"""Structure checks for audiotag's rendered Kubernetes manifests and Dockerfiles.

Called by scripts/check-deploy.sh with a folder of rendered manifests
(<target>.yaml for base, cpu, gpu, bulk-tagging, seed-models). Prints one line
per failed rule and exits 1 if any failed. `--self-test` also breaks copies of
the manifests on purpose and asserts that each rule notices.
"""
import copy
import os
import re
import shlex
import sys

import yaml

SERVER_TARGETS = ("base", "cpu", "gpu")
JOB_TARGETS = ("bulk-tagging", "seed-models")
WORKLOAD_KINDS = ("Deployment", "Job", "StatefulSet", "DaemonSet")


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

    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        p = srv.get(probe)
        if c.expect(p, where, f"{probe} missing"):
            g = p.get("grpc")
            c.expect(g and g.get("port") == grpc_port and not g.get("service"), where,
                     f"{probe} must be a native gRPC probe on port {grpc_port} (service \"\")")
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
        shards = flag_value(args, "shard-count", "shard_count")
        c.expect(shards is not None and completions is not None
                 and int(shards) == int(completions), where,
                 f"--shard-count {shards} must equal completions {completions}")
        c.expect(spec.get("parallelism", 1) <= (completions or 0), where,
                 "parallelism must not exceed completions")
        index = flag_value(args, "shard-index", "shard_index")
        c.expect(index is None or "JOB_COMPLETION_INDEX" in index, where,
                 "shard index must come from JOB_COMPLETION_INDEX")
        for f in ("manifest", "output", "server"):
            c.expect(flag_value(args, f), where, f"--{f} missing")
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


def check_dockerfile(c, path, required_user_uid=10001):
    where = os.path.relpath(path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
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
        return
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


def run_all(rendered, dockerfiles):
    c = Checker()
    server = None
    for t in SERVER_TARGETS:
        info = check_server(c, t, rendered[t])
        if t == "cpu":
            server = info
    for t in JOB_TARGETS:
        check_jobs(c, t, rendered[t], server)
    for d in dockerfiles:
        check_dockerfile(c, d)
    return c.errors


def self_test(rendered):
    """Each mutation must produce at least one error containing its phrase."""
    def dep(docs):
        return find(docs, "Deployment")[0]

    def srv(docs):
        return dep(docs)["spec"]["template"]["spec"]["containers"][0]

    def job(docs):
        return find(docs, "Job")[0]

    mutations = [
        ("cpu", lambda d: srv(d)["securityContext"].update(runAsNonRoot=False), "runAsNonRoot"),
        ("cpu", lambda d: srv(d)["readinessProbe"].update(grpc=None, tcpSocket={"port": 50051}),
         "native gRPC probe"),
        ("cpu", lambda d: dep(d)["spec"]["template"]["spec"].update(
            terminationGracePeriodSeconds=30), "terminationGracePeriodSeconds"),
        ("cpu", lambda d: [s["spec"].update(clusterIP="10.0.0.1") for s in find(d, "Service")],
         "headless"),
        ("cpu", lambda d: find(d, "HorizontalPodAutoscaler")[0]["spec"]["scaleTargetRef"].update(
            name="other"), "must target"),
        ("cpu", lambda d: find(d, "PodDisruptionBudget")[0]["spec"]["selector"].update(
            matchLabels={"app": "x"}), "PDB"),
        ("gpu", lambda d: srv(d)["resources"]["limits"].pop("nvidia.com/gpu"), "nvidia.com/gpu"),
        ("bulk-tagging", lambda d: job(d)["spec"].update(completions=3), "--shard-count"),
        ("bulk-tagging", lambda d: job(d)["spec"].pop("completionMode"), "Indexed"),
    ]
    failures = []
    for target, mutate, phrase in mutations:
        broken = copy.deepcopy(rendered)
        mutate(broken[target])
        errs = run_all(broken, [])
        if not any(phrase in e for e in errs):
            failures.append(f"self-test: breaking {target} ({phrase}) was not noticed")
    return failures


def main(argv):
    selftest = "--self-test" in argv
    argv = [a for a in argv if a != "--self-test"]
    if len(argv) < 2:
        print(__doc__)
        return 2
    folder, dockerfiles = argv[1], argv[2:]
    rendered = {t: load(os.path.join(folder, f"{t}.yaml"))
                for t in SERVER_TARGETS + JOB_TARGETS}
    errors = run_all(rendered, dockerfiles)
    if selftest:
        errors += self_test(rendered)
    for e in errors:
        print(f"FAIL {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
