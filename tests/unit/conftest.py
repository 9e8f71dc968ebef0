import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for folder in ("lambda_code/shared", "lambda_code/order_validator", "lambda_code/daily_report"):
    sys.path.insert(0, str(ROOT / folder))
