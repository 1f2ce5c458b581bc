#!/usr/bin/env python3
"""An external Berth framework in Python: runs a list of shell commands as
tasks, on resources Berth offers it (the offers protocol, docs/frameworks.md).

What it does, in order:

1. registers its Framework (mode Offers, scheduler external) if missing,
   and revives it (spec.suppressed: false) while it has tasks to place;
2. watches the Offers in its namespace: accepts each Outstanding offer by
   creating as many Placements as fit in it (Berth releases the rest), and
   declines (spec.decline.refuseSeconds) an offer it has no use for;
3. suppresses itself (spec.suppressed: true) once every task is placed;
4. watches its Placements: a placement refused by Berth (reason
   OfferRefused: the offer expired, was already taken, ...) or lost with
   its agent goes back to the queue, to be placed on the next offer;
5. exits 0 when every task Succeeded; 1 when one fails for another reason;
   2 when the deadline passes first; suppressed in every case.

All along, a thread renews its Lease `framework-NAME` every third of
--lease-seconds, so Berth knows it is connected. If it stops (killed, hung,
cut off), Berth rescinds its offers and offers it nothing; after the
Framework's failoverTimeoutSeconds (--failover-timeout-seconds when it
registers) its running tasks are killed. Restarted in time, it carries on.

It needs only the `kubernetes` package and a kubeconfig whose token may
answer Offers and create Placements in the namespace (`berth apiserver
--frameworks NS/NAME` writes one). Every decision is one line on stdout.
"""

import argparse
import json
import os
import queue
import socket
import sys
import threading
import time
from datetime import datetime, timezone

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

GROUP, VERSION = "berth.dev", "v1alpha1"
FRAMEWORK_LABEL, JOB_LABEL, TASK_GROUP_LABEL = "berth.dev/framework", "berth.dev/job", "berth.dev/task-group"


def log(message):
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


# --- resource arithmetic: Kubernetes quantities -> integers -------------------------------------

UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def refusal(e):
    """The message of a refused request's Status, or its reason."""
    try:
        return json.loads(e.body).get("message") or e.reason
    except (TypeError, ValueError):
        return e.reason


def millicpu(q):
    """'500m' -> 500, '2' -> 2000, '1.5' -> 1500."""
    q = str(q)
    return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)


def memory_bytes(q):
    """'256Mi' -> 268435456, '1G' -> 10**9, '1000' -> 1000."""
    q = str(q)
    for suffix, factor in UNITS.items():
        if q.endswith(suffix):
            return int(float(q[: -len(suffix)]) * factor)
    return int(q)


def how_many_fit(offered, each):
    """How many tasks of resources `each` fit in the resources `offered`."""
    by_cpu = millicpu(offered.get("cpu", "0")) // max(1, millicpu(each["cpu"]))
    by_memory = memory_bytes(offered.get("memory", "0")) // max(1, memory_bytes(each["memory"]))
    return min(by_cpu, by_memory)


# --- the tasks --------------------------------------------------------------------------------


class Task:
    """One command to run to success. `attempt` counts placements made for it."""

    def __init__(self, index, command):
        self.index, self.command = index, command
        self.state = "waiting"  # waiting -> placed -> succeeded
        self.attempt = 0
        self.placement = None


# --- watching: one thread per kind, feeding one queue the main loop reads ---------------------


def watch_forever(api, namespace, plural, selectors, events, stop):
    """Lists, then watches, `plural` in `namespace` (with `selectors`, e.g.
    label_selector=...); puts (plural, object) on `events`. Relists whenever
    the watch ends or fails, so no change is missed."""
    while not stop.is_set():
        try:
            listed = api.list_namespaced_custom_object(GROUP, VERSION, namespace, plural, **selectors)
            for obj in listed["items"]:
                events.put((plural, obj))
            stream = watch.Watch().stream(
                api.list_namespaced_custom_object, GROUP, VERSION, namespace, plural,
                resource_version=listed["metadata"]["resourceVersion"], **selectors,
                timeout_seconds=60,
            )
            for event in stream:
                if stop.is_set():
                    return
                if event["type"] in ("ADDED", "MODIFIED"):
                    events.put((plural, event["object"]))
        except Exception as e:  # the API server restarted, a 410, a network error: relist
            if not stop.is_set():
                log(f"watch of {plural} ended ({e}); listing again")
                stop.wait(1)


# --- staying connected: the framework's Lease ---------------------------------------------------


def keep_lease(coordination, namespace, framework, seconds, stop):
    """Creates Lease `framework-<framework>` if missing and renews it every
    `seconds`/3 until `stop` is set. Berth counts the framework connected while
    renewTime + leaseDurationSeconds is in the future (docs/frameworks.md,
    "Staying connected and failover")."""
    name = f"framework-{framework}"
    holder = f"{socket.gethostname()}/{os.getpid()}"
    lease = None
    while not stop.is_set():
        now = datetime.now(timezone.utc)
        try:
            if lease is None:
                try:
                    lease = coordination.read_namespaced_lease(name, namespace)
                except ApiException as e:
                    if e.status != 404:
                        raise
                    body = client.V1Lease(
                        metadata=client.V1ObjectMeta(name=name, namespace=namespace),
                        spec=client.V1LeaseSpec(holder_identity=holder, lease_duration_seconds=seconds,
                                                acquire_time=now, renew_time=now),
                    )
                    lease = coordination.create_namespaced_lease(namespace, body)
                    log(f"holding lease {namespace}/{name} ({seconds}s, renewed every {seconds / 3:.1f}s)")
                    stop.wait(seconds / 3)
                    continue
            lease.spec.holder_identity, lease.spec.lease_duration_seconds = holder, seconds
            lease.spec.renew_time = now
            lease = coordination.replace_namespaced_lease(name, namespace, lease)
        except ApiException as e:  # 409: changed meanwhile; read it again on the next renewal
            log(f"could not renew lease {name} ({e.status} {e.reason}); retrying")
            lease = None
        except Exception as e:  # the API server is unreachable: keep trying, the lease may still hold
            log(f"could not renew lease {name} ({e}); retrying")
            lease = None
        stop.wait(seconds / 3)


# --- the scheduler ----------------------------------------------------------------------------


class Scheduler:
    def __init__(self, args, api):
        self.args, self.api = args, api
        self.ns, self.name = args.namespace, args.framework
        self.resources = {"cpu": args.cpu, "memory": args.memory}
        self.tasks = [Task(i, c) for i, c in enumerate(args.task)]
        self.answered = set()  # offers already accepted or declined
        self.suppressed = None

    # The Framework: register, suppress, revive.

    def register(self):
        try:
            fw = self.api.get_namespaced_custom_object(GROUP, VERSION, self.ns, "frameworks", self.name)
            mode, scheduler = fw["spec"].get("mode"), fw["spec"].get("scheduler")
            if (mode, scheduler) != ("Offers", "external"):
                sys.exit(f"framework {self.ns}/{self.name} exists as mode {mode}, scheduler {scheduler}: "
                         "it must be mode Offers, scheduler external to receive offers")
            log(f"framework {self.ns}/{self.name} exists (Offers, external)")
            self.suppressed = fw["spec"].get("suppressed", False)
        except ApiException as e:
            if e.status != 404:
                raise
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Framework",
                "metadata": {"name": self.name, "namespace": self.ns},
                "spec": {"mode": "Offers", "scheduler": "external", "offerUnit": self.resources, "suppressed": False},
            }
            if self.args.failover_timeout_seconds is not None:
                body["spec"]["failoverTimeoutSeconds"] = self.args.failover_timeout_seconds
            self.api.create_namespaced_custom_object(GROUP, VERSION, self.ns, "frameworks", body)
            log(f"registered framework {self.ns}/{self.name} (Offers, external, unit {self.args.cpu}/{self.args.memory})")
            self.suppressed = False

    def set_suppressed(self, value):
        if self.suppressed == value:
            return
        patch = {"spec": {"suppressed": value}}
        self.api.patch_namespaced_custom_object(GROUP, VERSION, self.ns, "frameworks", self.name, patch)
        self.suppressed = value
        log("suppressed: every task is placed, no more offers wanted" if value else "revived: tasks are waiting")

    # Offers.

    def on_offer(self, offer):
        name = offer["metadata"]["name"]
        spec, state = offer["spec"], (offer.get("status") or {}).get("state", "Outstanding")
        if state != "Outstanding" or spec.get("decline") or name in self.answered or spec["framework"] != self.name:
            return
        self.answered.add(name)
        waiting = [t for t in self.tasks if t.state == "waiting"]
        room = how_many_fit(spec["resources"], self.resources)
        offered = f"{spec['resources'].get('cpu')} CPU / {spec['resources'].get('memory')}"
        if not waiting or room == 0:
            why = "no task is waiting" if not waiting else f"too small for a task of {self.args.cpu}/{self.args.memory}"
            self.decline(name, f"offer {name} ({offered} on {spec['agent']}): {why}")
            return
        taken = [t for t in waiting[:room] if self.place(t, name, spec["agent"])]
        log(f"accept offer {name} ({offered} on {spec['agent']}): tasks {[t.index for t in taken]}")
        if all(t.state != "waiting" for t in self.tasks):
            self.set_suppressed(True)

    def decline(self, offer, why):
        patch = {"spec": {"decline": {"refuseSeconds": self.args.refuse_seconds}}}
        try:
            self.api.patch_namespaced_custom_object(GROUP, VERSION, self.ns, "offers", offer, patch)
            log(f"decline {why}; refuse {self.args.refuse_seconds}s")
        except ApiException as e:  # rescinded or gone meanwhile: nothing to answer
            log(f"decline of {offer} not needed ({e.status} {e.reason})")

    def place(self, task, offer, agent):
        name = f"{self.name}-{task.index}-{task.attempt}"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Placement",
            "metadata": {
                "name": name,
                "namespace": self.ns,
                "labels": {FRAMEWORK_LABEL: self.name, JOB_LABEL: self.name, TASK_GROUP_LABEL: "main"},
            },
            "spec": {
                "agent": agent,
                "offer": offer,
                "job": self.name,
                "taskGroup": "main",
                "instance": task.index,
                "attempt": task.attempt,
                "image": self.args.image,
                "command": ["/bin/sh", "-c", task.command],
                "resources": self.resources,
            },
        }
        try:
            self.api.create_namespaced_custom_object(GROUP, VERSION, self.ns, "placements", body)
        except ApiException as e:
            if e.status == 422:  # the offer no longer takes it (settled, expired, too small): the task waits
                log(f"task {task.index} not placed on offer {offer}: {refusal(e)}")
                return False
            if e.status != 409:  # 409: made before a restart of this scheduler; it is ours
                raise
        task.state, task.placement = "placed", name
        task.attempt += 1
        return True

    # Placements.

    def on_placement(self, p):
        spec, status = p["spec"], p.get("status") or {}
        if spec.get("job") != self.name or spec["instance"] >= len(self.tasks):
            return
        task = self.tasks[spec["instance"]]
        name, phase, reason = p["metadata"]["name"], status.get("phase", "Pending"), status.get("reason")
        attempt = spec.get("attempt", 0)
        if attempt + 1 < task.attempt or task.state == "succeeded":
            return  # an older attempt, or news about a finished task
        task.attempt, task.placement = attempt + 1, name
        if phase == "Succeeded":
            task.state = "succeeded"
            log(f"task {task.index} succeeded ({name} on {spec['agent']})")
        elif (phase == "Failed" and reason == "OfferRefused") or phase == "Lost":
            if task.state != "waiting":
                task.state = "waiting"
                log(f"task {task.index} back to the queue: {name} {phase} {reason or ''}: {status.get('message', '')}")
                self.set_suppressed(False)
        elif phase in ("Failed", "Killed"):
            raise TaskFailed(f"task {task.index} {phase} ({name} on {spec['agent']}): "
                             f"{reason} exit {status.get('exitCode')}: {status.get('message', '')}")
        else:
            task.state = "placed"  # Pending .. Running; also found after a restart of this scheduler

    def done(self):
        return all(t.state == "succeeded" for t in self.tasks)


class TaskFailed(Exception):
    pass


def parse_args():
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    a.add_argument("--namespace", default=os.environ.get("BERTH_NAMESPACE", "default"))
    a.add_argument("--framework", default=os.environ.get("BERTH_FRAMEWORK", "python-scheduler"))
    a.add_argument("--image", default=os.environ.get("BERTH_IMAGE"), required="BERTH_IMAGE" not in os.environ)
    a.add_argument("--task", action="append", required=True, help="a shell command to run as one task (repeat)")
    a.add_argument("--cpu", default="500m", help="CPU of each task")
    a.add_argument("--memory", default="256Mi", help="memory of each task")
    a.add_argument("--refuse-seconds", type=int, default=5, help="how long a declined agent is not offered again")
    a.add_argument("--deadline-seconds", type=float, default=600, help="give up (exit 2) after this long")
    a.add_argument("--lease-seconds", type=int, default=15, help="duration of its Lease, renewed every third of it")
    a.add_argument("--failover-timeout-seconds", type=int, default=None,
                   help="when it registers the Framework: how long its tasks survive its disconnection")
    return a.parse_args()


def main():
    args = parse_args()
    config.load_kube_config(args.kubeconfig)
    api = client.CustomObjectsApi()
    s = Scheduler(args, api)
    s.register()
    stop = threading.Event()
    lease = (client.CoordinationV1Api(), s.ns, s.name, args.lease_seconds, stop)
    threading.Thread(target=keep_lease, args=lease, daemon=True).start()
    log(f"{len(s.tasks)} tasks to run, each {args.cpu} CPU / {args.memory}")

    # Placements first: after a restart, tasks already placed are not placed again.
    ours = f"{FRAMEWORK_LABEL}={s.name}"
    for p in api.list_namespaced_custom_object(GROUP, VERSION, s.ns, "placements", label_selector=ours)["items"]:
        s.on_placement(p)
    s.set_suppressed(all(t.state != "waiting" for t in s.tasks))

    events = queue.Queue()
    watches = (("placements", {"label_selector": ours}), ("offers", {"field_selector": f"spec.framework={s.name}"}))
    for plural, selectors in watches:
        threading.Thread(target=watch_forever, args=(api, s.ns, plural, selectors, events, stop), daemon=True).start()
    deadline = time.monotonic() + args.deadline_seconds
    try:
        while not s.done():
            left = deadline - time.monotonic()
            if left <= 0:
                states = {t.index: t.state for t in s.tasks}
                print(f"DEADLINE: {args.deadline_seconds}s passed; tasks: {states}", file=sys.stderr)
                sys.exit(2)
            try:
                plural, obj = events.get(timeout=left)
            except queue.Empty:
                continue
            if plural == "offers":
                s.on_offer(obj)
            else:
                s.on_placement(obj)
    except TaskFailed as e:
        sys.exit(f"FAILED: {e}")
    finally:
        stop.set()
        try:  # a framework that stops wants no more offers, whatever the outcome
            s.set_suppressed(True)
        except ApiException as e:
            log(f"could not suppress on exit: {e.status} {e.reason}")
    log(f"all {len(s.tasks)} tasks succeeded")


if __name__ == "__main__":
    main()
