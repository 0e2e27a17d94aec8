"""Things the code does in one place, read from the source: a second copy fails here.

"""

import ast
import re
from pathlib import Path

from portal import roles

ROOT = Path(__file__).resolve().parent.parent
APPS = sorted(path.parent for path in ROOT.glob("*/apps.py"))
NOT_YET: set[str] = set()  # modules not converted yet: none


def sources(*, also: tuple[str, ...] = ()) -> dict[str, str]:
    """Every module of every app (migrations aside), and of the folders in ``also``."""
    folders = [*APPS, *(ROOT / name for name in also)]
    return {
        str(path.relative_to(ROOT)): path.read_text()
        for folder in folders for path in sorted(folder.rglob("*.py"))
        if "migrations" not in path.parts
    }


def test_views_ask_portal_client_ip_for_a_requests_address():
    copies = [name for name, text in sources().items() if re.search(r"^def _ip\(", text, re.M)]
    assert copies == []


def test_every_limit_counts_with_portal_counters():
    counting = re.compile(r"cache\.(incr|decr)\(|time\.time\(\) *//")
    own_counters = [
        name for name, text in sources().items()
        if counting.search(text) and name != "portal/counters.py"
        and Path(name).name not in NOT_YET
    ]
    assert own_counters == []


def _wraps_only_an_audit_record(node: ast.With) -> bool:
    atomic = [item.context_expr for item in node.items]
    if len(atomic) != 1 or ast.unparse(atomic[0]) != "transaction.atomic()":
        return False
    if len(node.body) != 1 or not isinstance(node.body[0], ast.Expr | ast.Return):
        return False
    call = node.body[0].value
    return isinstance(call, ast.Call) and ast.unparse(call.func).split(".")[-1] in (
        "record", "record_for_request"
    )


def test_an_audit_record_is_not_wrapped_in_a_transaction_of_its_own():
    """``audit.events.record`` is atomic itself; a ``with transaction.atomic()`` around it alone
    only suggests that it is not."""
    wrapped = [
        f"{name}:{node.lineno}"
        for name, text in sources(also=("bench",)).items()
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.With) and _wraps_only_an_audit_record(node)
    ]
    assert wrapped == []


def test_permission_names_are_spelled_only_in_portal_roles():
    names = {value for value in vars(roles).values() if isinstance(value, str) and "." in value}
    names |= {name for role in roles.ROLE_PERMISSIONS.values() for name in role}
    spelled = [
        f"{name}: {node.value}"
        for name, text in sources().items()
        if name != "portal/roles.py" and Path(name).name not in NOT_YET
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Constant) and node.value in names
    ]
    assert spelled == []
