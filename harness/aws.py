"""`counterbench aws deploy|teardown`: the seed article's design in a real AWS account.

deploy creates, from an API definition (apigateway/counter-api.yaml) and its
templates, used unchanged: the DynamoDB table (on demand) with its counter and
seats items, an IAM role API Gateway assumes to call UpdateItem on that table
only, the REST API with its methods, integrations and integration responses,
and a stage. It writes a deployment file listing exactly what it created;
teardown removes exactly that. Credentials come only from the standard AWS
chain and are never written anywhere.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from harness.config import Scenario
from harness.core.errors import ConfigError, TargetError
from harness.core.runfolder import read_versioned
from harness.stack.apigateway.definition import ApiDefinition, load_definition
from harness.targets.apigateway import ApiGatewayTarget

# Version history of the deployment file:
#   1: first version
SCHEMA_VERSION = 1

ASSUME_ROLE = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}


def _clients(region: str) -> tuple[Any, Any, Any]:
    import boto3

    session = boto3.session.Session(region_name=region)
    return session.client("dynamodb"), session.client("iam"), session.client("apigateway")


def deploy(*, definition: Path, region: str, stage: str, seats: int, name: str | None = None) -> dict[str, Any]:
    """Create everything; on a failure part-way, remove what was created and re-raise."""
    from botocore.exceptions import BotoCoreError, ClientError

    api = load_definition(definition)
    ddb, iam, apigw = _clients(region)
    name = name or api.name
    created: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "region": region, "stage": stage,
                               "definition": str(definition), "created_at": time.time()}
    try:
        _create_table(ddb, api, seats, created)
        role_arn = _create_role(iam, name, created)
        _create_api(apigw, api, name, region, stage, role_arn, created)
    except (ClientError, BotoCoreError) as e:
        teardown(created)
        raise TargetError(f"aws deploy failed, everything it had created was removed: {e}") from e
    return created


def _create_table(ddb: Any, api: ApiDefinition, seats: int, created: dict[str, Any]) -> None:
    table = api.table
    types = ["HASH", "RANGE"]
    desc = ddb.create_table(
        TableName=table.name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": n, "KeyType": types[i]} for i, n in enumerate(table.key)],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in table.key])
    created["table"] = {"name": table.name, "arn": desc["TableDescription"]["TableArn"]}
    ddb.get_waiter("table_exists").wait(TableName=table.name, WaiterConfig={"Delay": 2, "MaxAttempts": 60})
    # the items the article's templates update; `set x = x + :num` needs x to exist
    items = {"counter": ({"context": "atomicCounter", "id": "id"}, "counterValue", 0),
             "seats": ({"context": "theatreSeats", "id": "id"}, "seatsLeft", seats)}
    for key, attribute, value in items.values():
        item = {k: {"S": v} for k, v in key.items() if k in table.key}
        ddb.put_item(TableName=table.name, Item={**item, attribute: {"N": str(value)}})
    created["items"] = {name: {"key": key, "attribute": attr} for name, (key, attr, _) in items.items()}


def _create_role(iam: Any, name: str, created: dict[str, Any]) -> str:
    role = f"{name}-apigateway"[:64]
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(ASSUME_ROLE),
                          Description="counterbench: lets API Gateway call DynamoDB UpdateItem")["Role"]["Arn"]
    created["role"] = {"name": role, "arn": arn}
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["dynamodb:UpdateItem"], "Resource": created["table"]["arn"]}]}
    iam.put_role_policy(RoleName=role, PolicyName="update-counter", PolicyDocument=json.dumps(policy))
    created["role"]["policy"] = "update-counter"
    return str(arn)


def _create_api(apigw: Any, api: ApiDefinition, name: str, region: str, stage: str, role_arn: str,
                created: dict[str, Any]) -> None:
    rest = apigw.create_rest_api(name=name, description="counterbench: the seed article's atomic counter",
                                 endpointConfiguration={"types": ["REGIONAL"]})
    api_id = rest["id"]
    created["api"] = {"id": api_id, "name": name}
    root = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    for path, methods in api.resources.items():
        parent = root
        for part in path.strip("/").split("/"):
            parent = apigw.create_resource(restApiId=api_id, parentId=parent, pathPart=part)["id"]
        for verb, m in methods.items():
            apigw.put_method(restApiId=api_id, resourceId=parent, httpMethod=verb, authorizationType="NONE")
            apigw.put_integration(
                restApiId=api_id, resourceId=parent, httpMethod=verb, type="AWS", integrationHttpMethod="POST",
                uri=f"arn:aws:apigateway:{region}:dynamodb:action/{m.action}", credentials=role_arn,
                requestTemplates={"application/json": m.request_template_text},
                passthroughBehavior="NEVER")
            for r in m.responses:
                apigw.put_method_response(restApiId=api_id, resourceId=parent, httpMethod=verb,
                                          statusCode=str(r.status))
                extra = {"selectionPattern": r.selection_pattern} if r.selection_pattern is not None else {}
                apigw.put_integration_response(
                    restApiId=api_id, resourceId=parent, httpMethod=verb, statusCode=str(r.status),
                    responseTemplates={"application/json": r.template_text}, **extra)
    apigw.create_deployment(restApiId=api_id, stageName=stage)
    created["url"] = f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"


def teardown(created: dict[str, Any]) -> list[str]:
    """Remove what a deployment file lists (and nothing else); returns what was removed."""
    from botocore.exceptions import ClientError

    ddb, iam, apigw = _clients(created["region"])
    removed: list[str] = []

    def gone(e: ClientError) -> bool:
        return e.response.get("Error", {}).get("Code") in ("NotFoundException", "NoSuchEntity",
                                                           "ResourceNotFoundException")

    steps = []
    if "api" in created:
        api_id = created["api"]["id"]
        steps.append((f"REST API {api_id}", lambda: apigw.delete_rest_api(restApiId=api_id)))
    role = created.get("role")
    if role and "policy" in role:
        steps.append((f"role policy {role['policy']}",
                      lambda: iam.delete_role_policy(RoleName=role["name"], PolicyName=role["policy"])))
    if role:
        steps.append((f"IAM role {role['name']}", lambda: iam.delete_role(RoleName=role["name"])))
    if "table" in created:
        steps.append((f"table {created['table']['name']}",
                      lambda: ddb.delete_table(TableName=created["table"]["name"])))
    for what, step in steps:
        try:
            step()
            removed.append(what)
        except ClientError as e:
            if not gone(e):
                raise TargetError(f"aws teardown: removing {what} failed: {e}") from e
    return removed


def write_deployment(path: Path, created: dict[str, Any]) -> None:
    if path.exists():
        raise ConfigError(f"{path} exists: it may describe a live deployment; tear that down or choose --out")
    path.write_text(json.dumps(created, indent=2) + "\n", encoding="utf-8")


def read_deployment(path: Path) -> dict[str, Any]:
    return read_versioned(path, SCHEMA_VERSION, ConfigError)


def apply_deployment(scenario: Scenario, deployment: dict[str, Any]) -> Scenario:
    """Point an apigateway scenario at a deployed stage and its table."""
    if not isinstance(scenario.target, ApiGatewayTarget):
        raise ConfigError(f"--deployment is for apigateway scenarios; {scenario.name} is {scenario.target.kind}")
    if not scenario.allow_remote:
        raise ConfigError(f"scenario {scenario.name} does not say `allow_remote: true`; a deployed API is remote")
    item = scenario.target.item.model_dump()
    item.update(table=deployment["table"]["name"], region=deployment["region"], url=None)
    raw = scenario.model_dump()
    raw["target"] = {**raw["target"], "url": deployment["url"], "item": item}
    return Scenario.model_validate(raw)
