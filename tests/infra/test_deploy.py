"""``plan`` and ``apply`` against the loopback stand-ins: what is sent, and that it converges.

The stand-ins record every request, so these tests assert the calls themselves (bodies, update
masks, etags), and that a second ``apply`` sends nothing but reads.
"""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path

import pytest

from infra import bundle, spec
from infra.__main__ import main
from infra.deploy import engine
from infra.deploy.clients import Clients, EndpointError
from infra.deploy.model import render
from infra.standins import CloudStandIn, RecordedRequest
from shared import events
from shared.catalog import FUNCTIONS, Trigger
from tests.support.deploy import make_context

PROJECT = "crm-sandbox"
REGION = "europe-west1"
LOCATION = f"projects/{PROJECT}/locations/{REGION}"


def sa(account_id: str) -> str:
    return f"{account_id}@{PROJECT}.iam.gserviceaccount.com"


def requests_to(standin: CloudStandIn, method: str, fragment: str) -> list[RecordedRequest]:
    return [r for r in standin.requests if r.method == method and fragment in r.path]


@pytest.fixture
def applied(
    standin: CloudStandIn, example_site: spec.SiteConfig, source_bundle: bundle.Bundle
) -> engine.Context:
    context = make_context(standin, example_site, source_bundle)
    engine.apply(context)
    return context


class TestPlan:
    def test_plan_of_an_empty_project_reads_only_and_lists_everything(
        self, standin: CloudStandIn, example_site: spec.SiteConfig, source_bundle: bundle.Bundle
    ) -> None:
        changes = engine.plan(make_context(standin, example_site, source_bundle))

        assert standin.mutations() == []
        assert standin.requests, "plan must read the live project"
        created = {(c.kind, c.name) for c in changes if c.action == "create"}
        for function in FUNCTIONS:
            assert ("function", function.name) in created
            assert ("service account", sa(spec.runtime_account_id(function.name))) in created
        text = render(changes, header="Plan")
        assert text.startswith("Plan: ")
        assert "+ function" in text
        assert "roles/datastore.user: '+serviceAccount:" in text

    def test_cli_plan_prints_a_readable_plan(
        self, standin: CloudStandIn, capsys: pytest.CaptureFixture[str]
    ) -> None:
        status = main(
            ["plan", "--site", str(spec.EXAMPLE_SITE_FILE), "--endpoint", standin.endpoint]
        )

        out = capsys.readouterr().out
        assert status == 0
        assert out.startswith(f"Plan for {PROJECT} ({REGION}): ")
        assert "+ scheduler job" in out
        assert "+ alert policy" in out
        assert standin.mutations() == []

    def test_plan_refuses_a_site_without_team_domains_in_one_line(
        self, standin: CloudStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        example = spec.EXAMPLE_SITE_FILE.read_text(encoding="utf-8")
        assert "  team_domains: [fund.example]\n" in example
        site = tmp_path / "deploy.yaml"
        site.write_text(example.replace("  team_domains: [fund.example]\n", ""), encoding="utf-8")

        status = main(["plan", "--site", str(site), "--endpoint", standin.endpoint])

        err = capsys.readouterr().err
        assert status == 2
        assert err.count("\n") == 1
        assert err.startswith("error: settings: team_domains is missing")
        assert "team_domains: [fund.example]" in err
        assert standin.mutations() == []

    def test_an_endpoint_off_loopback_is_refused(self) -> None:
        with pytest.raises(EndpointError):
            Clients(endpoint="https://cloudfunctions.googleapis.com")
        status = main(
            ["plan", "--site", str(spec.EXAMPLE_SITE_FILE), "--endpoint", "https://example.com"]
        )
        assert status == 2


class TestApply:
    def test_cli_apply_ends_with_the_consoles_address(
        self, standin: CloudStandIn, capsys: pytest.CaptureFixture[str]
    ) -> None:
        status = main(
            [
                "apply",
                "--yes",
                "--site",
                str(spec.EXAMPLE_SITE_FILE),
                "--endpoint",
                standin.endpoint,
            ]
        )
        out = capsys.readouterr().out
        assert status == 0
        console = f"https://{REGION}-{PROJECT}.cloudfunctions.net/admin_api/console/"
        assert out.rstrip().endswith(f"The admin console: {console}")

    def test_a_second_apply_sends_no_mutation(
        self, standin: CloudStandIn, example_site: spec.SiteConfig, source_bundle: bundle.Bundle
    ) -> None:
        context = make_context(standin, example_site, source_bundle)
        engine.apply(context)
        assert len(standin.mutations()) > 50
        standin.clear_requests()

        engine.apply(context)

        assert [str(r) for r in standin.mutations()] == []
        assert len(standin.requests) > 50  # it did look
        assert all(c.action == "unchanged" for c in engine.plan(context))

    def test_functions_are_created_as_the_spec_says(
        self, standin: CloudStandIn, applied: engine.Context, source_bundle: bundle.Bundle
    ) -> None:
        creates = {
            r.query["functionId"]: r
            for r in requests_to(standin, "POST", "/functions")
            if "functionId" in r.query
        }
        assert set(creates) == {f.name for f in FUNCTIONS}
        for function in FUNCTIONS:
            body = creates[function.name].body
            assert body["buildConfig"]["runtime"] == "python311"
            assert body["buildConfig"]["entryPoint"] == function.name
            config = body["serviceConfig"]
            assert config["maxInstanceRequestConcurrency"] == 1
            assert config["availableMemory"] == f"{function.memory_mb}Mi"
            assert config["timeoutSeconds"] == function.timeout_s
            assert config["serviceAccountEmail"] == sa(spec.runtime_account_id(function.name))
            env = config["environmentVariables"]
            assert env["CRM_STORE_BACKEND"] == "firestore"
            assert env["CRM_QUEUE_BACKEND"] == "pubsub"
            assert env["CRM_SECRETS_BACKEND"] == "secret_manager"
            assert body["labels"][spec.SOURCE_HASH_LABEL] == source_bundle.source_hash
            uploaded = standin.uploads[body["buildConfig"]["source"]["storageSource"]["object"]]
            assert uploaded == source_bundle.zip_bytes()
        # One upload URL and one upload per created function.
        assert len(requests_to(standin, "POST", ":generateUploadUrl")) == len(FUNCTIONS)
        assert len(requests_to(standin, "PUT", "upload/")) == len(FUNCTIONS)

    def test_the_uploaded_zip_has_main_py_at_its_root(
        self, standin: CloudStandIn, applied: engine.Context
    ) -> None:
        archive = zipfile.ZipFile(io.BytesIO(next(iter(standin.uploads.values()))))
        names = set(archive.namelist())
        assert {"main.py", "requirements.txt", "functions/main.py"} <= names
        assert not any(name.startswith(("embedded/", "sandbox/", "tests/")) for name in names)

    def test_every_cloud_run_service_has_the_invoker_check_disabled(
        self, standin: CloudStandIn, applied: engine.Context
    ) -> None:
        patches = requests_to(standin, "PATCH", "/services/")
        assert len(patches) == len(FUNCTIONS)
        for request in patches:
            assert request.query["updateMask"] == "invokerIamDisabled"
            assert request.body == {"invokerIamDisabled": True}
            assert standin.resources[request.path]["invokerIamDisabled"] is True
            assert "allUsers" not in str(standin.policy(request.path))

    def test_push_subscriptions_call_their_function_with_oidc_and_dead_letters(
        self, standin: CloudStandIn, applied: engine.Context
    ) -> None:
        base = spec.functions_base_url(PROJECT, REGION)
        for function in FUNCTIONS:
            if function.trigger is not Trigger.PUSH or function.topic is None:
                continue
            path = f"v1/projects/{PROJECT}/subscriptions/{function.topic.value}-push"
            live = standin.resources[path]
            url = f"{base}/{function.name}"
            assert live["topic"] == f"projects/{PROJECT}/topics/{function.topic.value}"
            assert live["pushConfig"]["pushEndpoint"] == url
            assert live["pushConfig"]["oidcToken"] == {
                "serviceAccountEmail": sa(spec.PUSH_ACCOUNT),
                "audience": url,
            }
            assert live["deadLetterPolicy"] == {
                "deadLetterTopic": f"projects/{PROJECT}/topics/{spec.DEAD_LETTER_TOPIC}",
                "maxDeliveryAttempts": 5,
            }
            assert live["retryPolicy"] == {"minimumBackoff": "10s", "maximumBackoff": "600s"}
            assert live["expirationPolicy"] == {}
            agent = spec.service_agent(standin.project_number, "pubsub")
            assert agent in standin.members(path, spec.ROLE_SUBSCRIBER)
        watch_topic = f"v1/projects/{PROJECT}/topics/gmail-watch"
        assert standin.members(watch_topic, spec.ROLE_PUBLISHER) == {spec.GMAIL_PUSH_PUBLISHER}

    def test_scheduler_jobs_call_their_function_with_the_scheduler_identity(
        self, standin: CloudStandIn, applied: engine.Context
    ) -> None:
        base = spec.functions_base_url(PROJECT, REGION)
        for function in FUNCTIONS:
            if function.trigger is not Trigger.SCHEDULE:
                continue
            job = standin.resources[f"v1/{LOCATION}/jobs/{spec.scheduler_job_id(function.name)}"]
            url = f"{base}/{function.name}"
            assert job["schedule"] == function.schedule
            assert job["httpTarget"]["uri"] == url
            assert job["httpTarget"]["oidcToken"] == {
                "serviceAccountEmail": sa(spec.SCHEDULER_ACCOUNT),
                "audience": url,
            }
        export = standin.resources[f"v1/{LOCATION}/jobs/crm-firestore-export"]
        assert export["httpTarget"]["uri"].endswith("/databases/(default):exportDocuments")
        assert export["httpTarget"]["oauthToken"]["serviceAccountEmail"] == sa(spec.BACKUP_ACCOUNT)
        body = base64.b64decode(export["httpTarget"]["body"]).decode()
        assert f"gs://{PROJECT}-crm-exports" in body

    def test_firestore_gets_pitr_every_index_ready_and_the_exemptions(
        self, standin: CloudStandIn, applied: engine.Context
    ) -> None:
        database = standin.resources[f"v1/projects/{PROJECT}/databases/(default)"]
        assert database["pointInTimeRecoveryEnablement"] == "POINT_IN_TIME_RECOVERY_ENABLED"
        assert database["deleteProtectionState"] == "DELETE_PROTECTION_ENABLED"
        indexes = [r for k, r in standin.resources.items() if "/indexes/" in k]
        assert len(indexes) == len(applied.spec.firestore.indexes)
        assert {index["state"] for index in indexes} == {"READY"}
        patched = {
            r.path.rsplit("/fields/", 1)[1] for r in requests_to(standin, "PATCH", "/fields/")
        }
        assert {"body", "snippet"} <= patched
        for request in requests_to(standin, "PATCH", "/fields/"):
            assert request.body == {"indexConfig": {"indexes": []}}

    def test_grants_follow_the_spec(self, standin: CloudStandIn, applied: engine.Context) -> None:
        users = standin.members("project", spec.ROLE_DATASTORE_USER)
        assert users == {f"serviceAccount:{sa(spec.runtime_account_id(f.name))}" for f in FUNCTIONS}
        smtp = f"v1/projects/{PROJECT}/secrets/smtp-password"
        assert standin.members(smtp, spec.ROLE_SECRET_ACCESSOR) == {
            f"serviceAccount:{sa('crm-admin-api')}",
            f"serviceAccount:{sa('crm-digest-tick')}",
        }
        delegator = f"v1/projects/{PROJECT}/serviceAccounts/{sa(spec.GMAIL_ACCOUNT)}"
        assert standin.members(delegator, spec.ROLE_TOKEN_CREATOR) == {
            f"serviceAccount:{sa(spec.runtime_account_id(f.name))}" for f in FUNCTIONS if f.gmail
        }
        for key, policy in standin.policies.items():
            assert "allUsers" not in str(policy), key

    def test_alert_policies_match_each_error_event(
        self, standin: CloudStandIn, applied: engine.Context
    ) -> None:
        policies = [r for k, r in standin.resources.items() if "/alertPolicies/" in k]
        by_event = {p["userLabels"]["crm-alert"]: p for p in policies}
        assert set(by_event) == set(events.alert_events())
        channel = next(r for k, r in standin.resources.items() if "/notificationChannels/" in k)
        for event, policy in by_event.items():
            condition = policy["conditions"][0]["conditionMatchedLog"]["filter"]
            assert f'jsonPayload.event="{event}"' in condition
            assert "severity>=ERROR" in condition
            assert policy["notificationChannels"] == [channel["name"]]


class TestRedeploy:
    def test_new_source_redeploys_every_function_and_nothing_else(
        self,
        standin: CloudStandIn,
        applied: engine.Context,
        example_site: spec.SiteConfig,
        source_bundle: bundle.Bundle,
    ) -> None:
        changed = bundle.Bundle({**source_bundle.files, "shared/added.py": b"VALUE = 1\n"})
        context = make_context(standin, example_site, changed)
        standin.clear_requests()

        engine.apply(context)

        mutations = standin.mutations()
        patches = [r for r in mutations if r.method == "PATCH"]
        assert {r.path.rsplit("/", 1)[1] for r in patches} == {f.name for f in FUNCTIONS}
        for request in patches:
            assert "buildConfig.source" in request.query["updateMask"].split(",")
            assert request.body["labels"][spec.SOURCE_HASH_LABEL] == changed.source_hash
        kinds = {(r.method, r.path.split("/")[0]) for r in mutations}
        assert kinds == {("PATCH", "v2"), ("POST", "v2"), ("PUT", "upload")}
        standin.clear_requests()
        engine.apply(context)
        assert standin.mutations() == []

    def test_a_setting_change_patches_only_that_field_without_a_rebuild(
        self,
        standin: CloudStandIn,
        applied: engine.Context,
        example_site: spec.SiteConfig,
        source_bundle: bundle.Bundle,
    ) -> None:
        site = example_site.model_copy(
            update={
                "functions": {
                    **example_site.functions,
                    "sync_poll": spec.FunctionOverrides(max_instances=3),
                }
            }
        )
        standin.clear_requests()

        engine.apply(make_context(standin, site, source_bundle))

        mutations = standin.mutations()
        assert [(r.method, r.path.rsplit("/", 1)[1]) for r in mutations] == [("PATCH", "sync_poll")]
        assert mutations[0].query["updateMask"] == "serviceConfig.maxInstanceCount"
        assert requests_to(standin, "PUT", "upload/") == []

    def test_drift_is_shown_by_plan_and_repaired_by_apply(
        self, standin: CloudStandIn, applied: engine.Context
    ) -> None:
        job = standin.resources[f"v1/{LOCATION}/jobs/crm-sync-poll"]
        job["schedule"] = "0 * * * *"
        service = f"v2/{LOCATION}/services/gmail-push"
        standin.resources[service]["invokerIamDisabled"] = False
        standin.seed_allusers_binding(service)
        subscription = standin.resources[f"v1/projects/{PROJECT}/subscriptions/sync-requests-push"]
        del subscription["deadLetterPolicy"]

        changes = engine.plan(applied)
        updated = {(c.kind, c.name) for c in changes if c.action == "update"}
        assert ("scheduler job", "crm-sync-poll") in updated
        assert ("cloud run service", service.removeprefix("v2/")) in updated
        assert ("IAM cloud run service", service.removeprefix("v2/")) in updated
        assert ("subscription", "sync-requests-push") in updated
        schedule = next(c for c in changes if c.name == "crm-sync-poll").fields
        assert [(f.key, f.before, f.after) for f in schedule] == [
            ("schedule", "0 * * * *", "*/5 * * * *")
        ]

        engine.apply(applied)

        assert job["schedule"] == "*/5 * * * *"
        assert standin.resources[service]["invokerIamDisabled"] is True
        assert "allUsers" not in str(standin.policy(service))
        assert subscription["deadLetterPolicy"]["maxDeliveryAttempts"] == 5
        assert all(c.action == "unchanged" for c in engine.plan(applied))

    def test_a_stale_etag_is_retried_and_the_other_writers_grant_kept(
        self, standin: CloudStandIn, example_site: spec.SiteConfig, source_bundle: bundle.Bundle
    ) -> None:
        standin.interfere_once("project", "user:auditor@fund.example", "roles/viewer")

        engine.apply(make_context(standin, example_site, source_bundle))

        writes = requests_to(standin, "POST", f"v3/projects/{PROJECT}:setIamPolicy")
        assert [r.status for r in writes] == [409, 200]
        assert standin.members("project", "roles/viewer") == {"user:auditor@fund.example"}
        assert len(standin.members("project", spec.ROLE_DATASTORE_USER)) == len(FUNCTIONS)

    def test_a_role_the_spec_does_not_give_is_taken_from_its_accounts_only(
        self, standin: CloudStandIn, applied: engine.Context
    ) -> None:
        policy = standin.policy("project")
        policy["bindings"].append(
            {
                "role": "roles/editor",
                "members": [f"serviceAccount:{sa('crm-sync-poll')}", "user:owner@fund.example"],
            }
        )
        standin.policies["project"] = policy

        engine.apply(applied)

        assert standin.members("project", "roles/editor") == {"user:owner@fund.example"}
