"""`counterbench aws deploy` / `teardown` against moto (in process): no test ever contacts AWS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.aws import apply_deployment, deploy, read_deployment, teardown
from harness.cli import main
from harness.config import load_scenarios
from harness.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = ROOT / "apigateway" / "counter-api.yaml"


@pytest.fixture
def aws(monkeypatch):
    moto = pytest.importorskip("moto")
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                 "AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(k, v)
    with moto.mock_aws():
        import boto3

        yield boto3.session.Session(region_name="eu-west-1")


def test_deploy_creates_the_article_design_with_its_templates_verbatim(aws):
    created = deploy(definition=DEFINITION, region="eu-west-1", stage="prod", seats=300)
    apigw, ddb, iam = aws.client("apigateway"), aws.client("dynamodb"), aws.client("iam")
    api_id = created["api"]["id"]
    assert created["url"] == f"https://{api_id}.execute-api.eu-west-1.amazonaws.com/prod"
    resources = {r["path"]: r for r in apigw.get_resources(restApiId=api_id)["items"]}
    assert {"/counter", "/seats", "/seats-unmapped"} <= set(resources)
    integ = apigw.get_integration(restApiId=api_id, resourceId=resources["/counter"]["id"], httpMethod="POST")
    assert integ["type"] == "AWS"
    assert integ["uri"] == "arn:aws:apigateway:eu-west-1:dynamodb:action/UpdateItem"
    assert integ["requestTemplates"]["application/json"] == (ROOT / "apigateway" / "article-request.vtl").read_text()
    resp = apigw.get_integration_response(restApiId=api_id, resourceId=resources["/counter"]["id"],
                                          httpMethod="POST", statusCode="200")
    assert resp["responseTemplates"]["application/json"] == (ROOT / "apigateway" / "article-response.vtl").read_text()
    sold_out = apigw.get_integration_response(restApiId=api_id, resourceId=resources["/seats"]["id"],
                                              httpMethod="POST", statusCode="409")
    assert sold_out["selectionPattern"] == r"4\d{2}"
    item = ddb.get_item(TableName="donation-data", Key={"context": {"S": "theatreSeats"}, "id": {"S": "id"}})
    assert item["Item"]["seatsLeft"] == {"N": "300"}
    policy = json.loads(json.dumps(iam.get_role_policy(RoleName=created["role"]["name"],
                                                       PolicyName="update-counter")["PolicyDocument"]))
    assert policy["Statement"][0]["Action"] == ["dynamodb:UpdateItem"]
    assert policy["Statement"][0]["Resource"] == created["table"]["arn"]


def test_teardown_leaves_nothing_behind(aws):
    created = deploy(definition=DEFINITION, region="eu-west-1", stage="prod", seats=10)
    removed = teardown(created)
    assert len(removed) == 4
    assert aws.client("apigateway").get_rest_apis()["items"] == []
    assert aws.client("dynamodb").list_tables()["TableNames"] == []
    assert [r for r in aws.client("iam").list_roles()["Roles"] if r["RoleName"] == created["role"]["name"]] == []
    # a second teardown finds nothing and removes nothing (moto cannot say "not found" for a
    # deleted REST API, so the API is left out here)
    assert teardown({k: v for k, v in created.items() if k != "api"}) == []


def test_cli_deploy_writes_a_file_without_credentials_and_teardown_removes_it(aws, tmp_path, capsys):
    out = tmp_path / "deployment.json"
    assert main(["aws", "deploy", "--region", "eu-west-1", "--definition", str(DEFINITION), "--out", str(out)]) == 0
    text = out.read_text()
    assert "testing" not in text  # no credential ever reaches a file
    assert "invoke URL: https://" in capsys.readouterr().out
    assert main(["aws", "teardown", "--deployment", str(out)]) == 0
    assert not out.exists()
    assert aws.client("apigateway").get_rest_apis()["items"] == []


def test_run_uses_the_deployment_and_only_remote_scenarios_accept_it(aws, tmp_path):
    created = deploy(definition=DEFINITION, region="eu-west-1", stage="prod", seats=10)
    path = tmp_path / "d.json"
    path.write_text(json.dumps(created))
    scenarios = load_scenarios(ROOT / "scenarios.yaml")
    s = apply_deployment(scenarios["aws-apigateway-counter"], read_deployment(path))
    assert s.target.url == created["url"]
    assert (s.target.item.table, s.target.item.region, s.target.item.url) == ("donation-data", "eu-west-1", None)
    with pytest.raises(ConfigError, match="allow_remote"):
        apply_deployment(scenarios["apigateway-counter"], created)


def test_a_failed_deploy_removes_what_it_created(aws):
    from harness.core.errors import TargetError

    ddb = aws.client("dynamodb")
    ddb.create_table(TableName="donation-data", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "context", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "context", "AttributeType": "S"}])
    with pytest.raises(TargetError, match="everything it had created was removed"):
        deploy(definition=DEFINITION, region="eu-west-1", stage="prod", seats=10)
    assert aws.client("apigateway").get_rest_apis()["items"] == []
    assert ddb.list_tables()["TableNames"] == ["donation-data"]  # not ours: left alone
