"""The Python `kubernetes` client against Berth's API server.

Run by e2e/tests/python_client.rs with KUBECONFIG set; exits non-zero with
what it saw on the first thing that does not behave as Kubernetes does.
"""

import os
import sys
import threading

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

GROUP, VERSION, PLURAL = "berth.dev", "v1alpha1", "jobs"
NS = "python"


def job(name, priority):
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS, "labels": {"client": "python"}},
        "spec": {
            "priority": priority,
            "taskGroups": [
                {
                    "name": "main",
                    "image": "127.0.0.1:5000/berth/demo:latest",
                    "command": ["/bin/sh", "-c", "echo hello"],
                    "resources": {"cpu": "100m", "memory": "32Mi"},
                }
            ],
        },
    }


def check(cond, what):
    if not cond:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what}")


def main():
    config.load_kube_config(os.environ["KUBECONFIG"])
    core = client.CoreV1Api()
    jobs = client.CustomObjectsApi()

    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    names = [n.metadata.name for n in core.list_namespace().items]
    check(NS in names, f"namespace {NS} created and listed: {names}")

    # A watch started before the writes sees each of them, in order.
    seen = []
    ready = threading.Event()

    def watch_jobs():
        w = watch.Watch()
        listed = jobs.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)
        ready.set()
        for ev in w.stream(
            jobs.list_namespaced_custom_object,
            GROUP,
            VERSION,
            NS,
            PLURAL,
            resource_version=listed["metadata"]["resourceVersion"],
            timeout_seconds=30,
        ):
            seen.append((ev["type"], ev["object"]["metadata"]["name"]))
            if ev["type"] == "DELETED":
                w.stop()

    watcher = threading.Thread(target=watch_jobs)
    watcher.start()
    ready.wait(10)

    created = jobs.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job("py", 1))
    check(created["metadata"]["uid"] != "", "create returns the stored object with a uid")
    try:
        jobs.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job("py", 1))
        check(False, "a second create of the same name is refused")
    except ApiException as e:
        check(e.status == 409 and "AlreadyExists" in e.body, f"a second create answers 409 AlreadyExists ({e.status})")

    listed = jobs.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, label_selector="client=python")
    check([i["metadata"]["name"] for i in listed["items"]] == ["py"], "list with a label selector")

    patched = jobs.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "py", {"spec": {"priority": 5}})
    check(patched["spec"]["priority"] == 5, "merge patch changes the spec")
    check(patched["metadata"]["generation"] == 2, "a spec change bumps the generation")

    try:
        jobs.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "py", {"spec": {"priority": "high"}})
        check(False, "a patch that breaks the schema is refused")
    except ApiException as e:
        check(e.status == 422 and "spec.priority" in e.body, f"an invalid patch answers 422 naming spec.priority ({e.status})")

    got = jobs.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "py")
    check(got["spec"]["priority"] == 5, "the refused patch changed nothing")

    jobs.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "py")
    try:
        jobs.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "py")
        check(False, "a deleted job is gone")
    except ApiException as e:
        check(e.status == 404, f"get after delete answers 404 ({e.status})")

    watcher.join(40)
    check(not watcher.is_alive(), f"the watch ended after DELETED; saw {seen}")
    check(seen == [("ADDED", "py"), ("MODIFIED", "py"), ("DELETED", "py")], f"the watch saw each write once: {seen}")

    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="token"), string_data={"token": "s3cret"})
    core.create_namespaced_secret(NS, secret)
    got = core.read_namespaced_secret("token", NS)
    check(got.data.get("token") == "czNjcmV0", f"stringData is stored as base64 data: {got.data}")

    core.delete_namespace(NS)
    print("all python client checks passed")


if __name__ == "__main__":
    main()
