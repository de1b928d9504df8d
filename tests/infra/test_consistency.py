"""The deployment agrees with the code: what is deployed exists, and what the code needs is granted.

* every entry point of ``functions/main.py`` is deployed, and every deployed one exists;
* every Scheduler target and push endpoint is a deployed function, called with the audience and
  identity its verifier expects;
* every secret a function's code reads is declared and granted to that function only, and the
  same for Gmail delegation and Pub/Sub topics (derived from the source by ``code_facts``, then
  compared with the catalog and the spec);
* every Firestore query shape has its index: ``tests/contract/test_index_coverage.py`` proves the
  adapter's recorded shapes against ``infra/firestore.indexes.json`` by Firestore's rule; here the
  spec must deploy exactly that file's indexes and exemptions;
* every alert names an event the code logs at ERROR.
"""

from __future__ import annotations

import ast
import json

import pytest

import functions.main
from infra import bundle, spec
from shared import events
from shared.adapters.firestore.indexes import load_exemptions, load_indexes
from shared.catalog import FUNCTIONS, SECRET_SETTINGS, FunctionSpec, Trigger
from shared.config import Settings, StoreBackend
from tests.support import code_facts

PROJECT_NUMBER = "123456789012"


@pytest.fixture(scope="module")
def deployment(example_site: spec.SiteConfig) -> spec.DeploymentSpec:
    return spec.build_spec(example_site, project_number=PROJECT_NUMBER)


def member_of(deployment: spec.DeploymentSpec, function: str) -> str:
    return f"serviceAccount:{deployment.function(function).service_account}"


class TestEntryPoints:
    def test_every_entry_point_is_deployed_and_every_deployed_one_exists(
        self, deployment: spec.DeploymentSpec
    ) -> None:
        exported = set(functions.main.__all__)
        deployed = {function.entry_point for function in deployment.functions}
        assert deployed == exported
        for function in deployment.functions:
            assert callable(getattr(functions.main, function.entry_point))
        assert bundle.entry_points() == list(functions.main.__all__)

    def test_each_function_runs_python311_one_request_at_a_time_as_cataloged(
        self, deployment: spec.DeploymentSpec
    ) -> None:
        for catalog in FUNCTIONS:
            deployed = deployment.function(catalog.name)
            assert deployed.runtime == "python311"
            assert deployed.concurrency == 1
            assert (deployed.memory_mb, deployed.timeout_s) == (
                catalog.memory_mb,
                catalog.timeout_s,
            )
        accounts = [function.service_account for function in deployment.functions]
        assert len(set(accounts)) == len(accounts), "each function has its own identity"


class TestCallers:
    def test_scheduler_jobs_target_deployed_scheduled_functions(
        self, deployment: spec.DeploymentSpec
    ) -> None:
        by_url = {function.url: function for function in deployment.functions}
        scheduler = deployment.service_account(spec.SCHEDULER_ACCOUNT).email
        targeted = set()
        for job in deployment.scheduler_jobs:
            if not job.oidc_service_account:
                continue  # the Firestore export calls Google's API, not a function
            assert job.uri in by_url, f"{job.name} targets no deployed function"
            target = by_url[job.uri]
            assert target.trigger is Trigger.SCHEDULE
            assert job.oidc_audience == job.uri
            assert job.oidc_service_account == scheduler
            assert target.env["CRM_SCHEDULER_IDENTITY"] == scheduler
            assert (
                Settings.model_validate(
                    {"functions_base_url": target.env["CRM_FUNCTIONS_BASE_URL"]}
                ).function_url(target.name)
                == job.uri
            )
            targeted.add(target.name)
        assert targeted == {f.name for f in FUNCTIONS if f.trigger is Trigger.SCHEDULE}

    def test_push_subscriptions_target_deployed_push_functions(
        self, deployment: spec.DeploymentSpec
    ) -> None:
        by_url = {function.url: function for function in deployment.functions}
        push = deployment.service_account(spec.PUSH_ACCOUNT).email
        topics = {topic.name for topic in deployment.topics}
        targeted = set()
        for subscription in deployment.subscriptions:
            assert subscription.topic in topics
            if not subscription.push_endpoint:
                continue
            target = by_url[subscription.push_endpoint]
            catalog = next(f for f in FUNCTIONS if f.name == target.name)
            assert target.trigger is Trigger.PUSH
            assert catalog.topic is not None and subscription.topic == catalog.topic.value
            assert subscription.audience == subscription.push_endpoint
            assert subscription.oidc_service_account == push == target.env["CRM_PUSH_IDENTITY"]
            assert subscription.max_delivery_attempts == 5
            assert subscription.dead_letter_topic == spec.DEAD_LETTER_TOPIC
            assert subscription.ack_deadline_s >= min(600, catalog.timeout_s)
            targeted.add(target.name)
        assert targeted == {f.name for f in FUNCTIONS if f.trigger is Trigger.PUSH}

    def test_scheduler_and_push_identities_are_distinct_accounts(
        self, deployment: spec.DeploymentSpec
    ) -> None:
        scheduler = deployment.service_account(spec.SCHEDULER_ACCOUNT).email
        push = deployment.service_account(spec.PUSH_ACCOUNT).email
        runtime = {function.service_account for function in deployment.functions}
        assert scheduler != push
        assert not {scheduler, push} & runtime


@pytest.mark.parametrize("catalog", FUNCTIONS, ids=lambda f: f.name)
class TestWhatTheCodeNeedsIsGranted:
    def test_every_secret_it_reads_is_declared_and_granted(
        self, catalog: FunctionSpec, deployment: spec.DeploymentSpec
    ) -> None:
        needs = code_facts.function_needs(catalog.name)
        # The delegation key is never read in the cloud: delegation is keyless there.
        read = needs.secret_settings - {"gmail_key_secret"}
        assert read == {SECRET_SETTINGS[secret] for secret in catalog.secrets}
        deployed = deployment.function(catalog.name)
        assert "CRM_GMAIL_KEY_SECRET" not in deployed.env
        declared = {secret.secret_id: secret for secret in deployment.secrets}
        for secret in catalog.secrets:
            assert secret.value in declared, f"{secret.value} is not declared"
            assert member_of(deployment, catalog.name) in declared[secret.value].accessors
            assert deployed.env[spec.env_name(SECRET_SETTINGS[secret])] == secret.value
        for deployed_secret in deployment.secrets:
            if deployed_secret.secret_id not in {s.value for s in catalog.secrets}:
                assert member_of(deployment, catalog.name) not in deployed_secret.accessors

    def test_gmail_delegation_only_for_functions_acting_as_mailboxes(
        self, catalog: FunctionSpec, deployment: spec.DeploymentSpec
    ) -> None:
        needs = code_facts.function_needs(catalog.name)
        assert needs.gmail == catalog.gmail
        delegator = deployment.service_account(spec.GMAIL_ACCOUNT)
        granted = member_of(deployment, catalog.name) in delegator.token_creators
        assert granted == catalog.gmail
        env = deployment.function(catalog.name).env
        assert (env.get("CRM_GMAIL_SERVICE_ACCOUNT") == delegator.email) == catalog.gmail

    def test_it_may_publish_exactly_where_its_code_publishes(
        self, catalog: FunctionSpec, deployment: spec.DeploymentSpec
    ) -> None:
        needs = code_facts.function_needs(catalog.name)
        assert needs.publishes == bool(catalog.publishes)
        assert needs.topics == {topic.name for topic in catalog.publishes}
        member = member_of(deployment, catalog.name)
        may_publish = {t.name for t in deployment.topics if member in t.publishers}
        assert may_publish == {topic.value for topic in catalog.publishes}

    def test_its_settings_parse_as_the_function_will_read_them(
        self,
        catalog: FunctionSpec,
        deployment: spec.DeploymentSpec,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        deployed = deployment.function(catalog.name)
        for name, value in deployed.env.items():
            monkeypatch.setenv(name, value)
        settings = Settings()
        assert settings.store_backend is StoreBackend.FIRESTORE
        assert settings.gcp_project == deployment.project
        assert settings.function_url(catalog.name) == deployed.url
        assert (
            settings.scheduler_identity == deployment.service_account(spec.SCHEDULER_ACCOUNT).email
        )
        assert settings.push_identity == deployment.service_account(spec.PUSH_ACCOUNT).email


class TestSecretsFollowFeatures:
    def test_no_secret_is_deployed_for_a_feature_left_unconfigured(
        self, example_site: spec.SiteConfig
    ) -> None:
        bare = {
            k: v for k, v in example_site.settings.items() if not k.startswith(("smtp", "narrator"))
        }
        site = example_site.model_copy(update={"settings": bare})
        deployment = spec.build_spec(site, project_number=PROJECT_NUMBER)
        assert deployment.secrets == ()
        for function in deployment.functions:
            assert "CRM_SMTP_PASSWORD_SECRET" not in function.env
            assert "CRM_NARRATOR_KEY_SECRET" not in function.env

    @pytest.mark.parametrize(
        ("settings", "complaint"),
        [
            ({"no_such_setting": "x"}, "not a setting"),
            ({"store_backend": "sqlite"}, "set by the deployment"),
            ({"gmail_token_uri": "http://127.0.0.1:1/token"}, "local-only"),
            ({"fund_time_zone": "Mars/Olympus"}, "IANA"),
        ],
    )
    def test_a_bad_site_setting_fails_at_plan_time(
        self, example_site: spec.SiteConfig, settings: dict[str, str], complaint: str
    ) -> None:
        site = example_site.model_copy(update={"settings": settings})
        with pytest.raises(spec.SpecError, match=complaint):
            spec.build_spec(site, project_number=PROJECT_NUMBER)


class TestLeastPrivilege:
    def test_project_roles_are_firestore_use_and_the_export_only(
        self, deployment: spec.DeploymentSpec
    ) -> None:
        assert set(deployment.project_roles) == {spec.ROLE_DATASTORE_USER, spec.ROLE_EXPORT_ADMIN}
        assert set(deployment.project_roles[spec.ROLE_DATASTORE_USER]) == {
            member_of(deployment, f.name) for f in FUNCTIONS
        }
        assert deployment.project_roles[spec.ROLE_EXPORT_ADMIN] == (
            deployment.service_account(spec.BACKUP_ACCOUNT).member,
        )

    def test_nothing_is_granted_to_everyone(self, deployment: spec.DeploymentSpec) -> None:
        text = json.dumps(deployment.model_dump(mode="json"))
        assert "allUsers" not in text
        assert "allAuthenticatedUsers" not in text
        assert "roles/owner" not in text
        assert "roles/editor" not in text

    def test_gmail_may_publish_on_the_watch_topic(self, deployment: spec.DeploymentSpec) -> None:
        watch = next(topic for topic in deployment.topics if topic.name == "gmail-watch")
        assert spec.GMAIL_PUSH_PUBLISHER in watch.publishers


class TestFirestore:
    def test_the_spec_deploys_exactly_the_index_file(self, deployment: spec.DeploymentSpec) -> None:
        file_indexes = {
            (
                index.collection_group,
                tuple(
                    (f.field_path, f.array_config or (f.order.value if f.order else ""))
                    for f in index.fields
                ),
            )
            for index in load_indexes()
        }
        deployed = {(i.collection_group, i.fields) for i in deployment.firestore.indexes}
        assert deployed == file_indexes
        exempt = {
            (o.collection_group, o.field_path)
            for o in deployment.firestore.field_overrides
            if not o.indexes
        }
        assert exempt == load_exemptions()

    def test_bodies_snippets_and_unqueried_arrays_are_exempt(self) -> None:
        exempt = load_exemptions()
        assert {("emails", "body"), ("emails", "snippet")} <= exempt
        assert {("emails", "references"), ("emails", "to"), ("emails", "cc")} <= exempt

    def test_point_in_time_recovery_and_a_daily_export(
        self, deployment: spec.DeploymentSpec
    ) -> None:
        assert deployment.firestore.point_in_time_recovery
        export = next(j for j in deployment.scheduler_jobs if j.name == "crm-firestore-export")
        assert json.loads(export.body) == {"outputUriPrefix": f"gs://{deployment.bucket.name}"}
        assert export.oauth_service_account == deployment.service_account(spec.BACKUP_ACCOUNT).email


class TestAlerts:
    def test_every_alert_names_an_event_the_code_logs_at_error(
        self, deployment: spec.DeploymentSpec
    ) -> None:
        logged = code_facts.logged_error_events()
        names = {name for name in dir(events) if name.isupper()}
        alerted = {alert.event for alert in deployment.alerts}
        assert alerted == set(events.alert_events())
        for name in names - {"ALERTS"}:
            if getattr(events, name) in alerted:
                assert name in logged, f"events.{name} is alerted on but never logged at ERROR"
        for alert in deployment.alerts:
            assert f'jsonPayload.event="{alert.event}"' in alert.filter
            assert "severity>=ERROR" in alert.filter


class TestCodeFactsCanFail:
    """The derivation finds needs in code it has never seen (so the checks above can fail)."""

    WIRING = (
        "def smtp_sender():\n    return secrets().get(get_settings().smtp_password_secret)\n"
        "def secrets():\n    return None\n"
        "def gmail_for(a):\n    return _delegated_credentials(a)\n"
        "def _delegated_credentials(a):\n    return a\n"
        "def queue():\n    return None\n"
    )

    def test_a_secret_delegation_and_a_topic_are_found(self) -> None:
        handler = ast.parse(
            "from shared import wiring\n"
            "def handle():\n"
            "    wiring.smtp_sender()\n"
            "    wiring.gmail_for('a@fund.example')\n"
            "    wiring.queue().publish(Topic.REMATCH.value, {})\n"
        )
        needs = code_facts.needs_of_trees({"functions.fake": handler}, self.WIRING)
        assert needs.secret_settings == {"smtp_password_secret"}
        assert needs.gmail
        assert needs.topics == {"REMATCH"}

    def test_code_that_names_no_builder_needs_nothing(self) -> None:
        handler = ast.parse("def handle():\n    return 1\n")
        needs = code_facts.needs_of_trees({"functions.fake": handler}, self.WIRING)
        assert needs == code_facts.Needs(frozenset(), False, False, frozenset())
