"""The production install has no sandbox extra: the service and the CLI still import, and
`settle demo` names what is missing instead of failing on an import deep inside."""
from __future__ import annotations

import subprocess
import sys
import textwrap

WITHOUT_THE_EXTRA = textwrap.dedent("""
    import sys
    for name in ("sandboxes", "jsonschema", "fastjsonschema"):
        sys.modules[name] = None  # import fails, find_spec answers None: not installed
    import api, workers.jobs, cli
    from click.testing import CliRunner
    result = CliRunner().invoke(cli.main, ["demo", "run"])
    print(result.exit_code)
    print(result.output)
""")


def test_cli_and_service_import_without_the_sandbox_extra_and_demo_names_it():
    done = subprocess.run([sys.executable, "-c", WITHOUT_THE_EXTRA], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    exit_code, message = done.stdout.split("\n", 1)
    assert exit_code == "1"
    assert "needs the sandbox extra (missing: sandboxes, jsonschema, fastjsonschema)" in message
    assert "pip install 'cashback-settlement[sandbox]'" in message
