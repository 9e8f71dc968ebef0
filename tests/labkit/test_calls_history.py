"""On the local target: a step's recorded calls, and the API history a student reads (cloudtrail.lookup_events)."""
from __future__ import annotations

from labkit import calls, functions, history, network
from labkit.names import REPORT_FUNCTION, VALIDATOR_FUNCTION, VALIDATOR_ROLE


def test_a_rerun_step_shows_its_calls_and_cli(provisioned):
    lab = provisioned.lab
    calls.next_cell()
    network.create_db_subnet_group(lab)
    calls.next_cell()
    frame = calls.calls_frame(lab)
    assert "DescribeDBSubnetGroups" in set(frame["operation"])
    assert set(frame["answer"]) == {"200"}
    assert "aws rds describe-db-subnet-groups --db-subnet-group-name order-processing-app-SG" in set(frame["aws_cli"])
    assert "RDS &gt; Subnet groups" in calls.step_calls(lab, 2)._repr_html_()


def test_the_history_shows_the_validators_role_session_reading_its_secret(provisioned):
    lab = provisioned.lab
    functions.invoke(lab, VALIDATOR_FUNCTION, {"customer_name": "Trail", "product": "Pen", "quantity": 1,
                                               "amount": "1.00"})
    frame = history.api_history_frame(lab, Username=VALIDATOR_FUNCTION)
    reads = frame[frame["event"] == "GetSecretValue"]
    assert not reads.empty and set(reads["result"]) == {"OK"}
    assert set(reads["who"]) == {f"assumed-role/{VALIDATOR_ROLE}/{VALIDATOR_FUNCTION}"}
    assumed = frame[frame["event"] == "AssumeRole"]
    assert set(assumed["who"]) == {"lambda.amazonaws.com"}  # Lambda took the role for the function
    assert list(frame.columns) == history.COLUMNS
    assert history.api_history_frame(lab, Username=REPORT_FUNCTION)["who"].str.contains(REPORT_FUNCTION).all()
