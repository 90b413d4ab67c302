"""The package as a district installs it: the project's wheel, `pip install`ed into a fresh Airflow venv.

The wheel is built from this checkout, then installed with its declared dependency ranges (resolved under
`constraints.txt`, which pins Airflow 3.3.2) into a new virtual environment without system site
packages, by uv (the same resolution as pip; seconds instead of minutes, from uv's cache). Airflow runs
from that venv, outside this checkout, with an empty plugins folder and an empty DAGs folder: everything
it then knows about writeback comes from the installed package's entry points.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).parent / "uv")

pytestmark = pytest.mark.integration


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kwargs)
    assert done.returncode == 0, f"{' '.join(cmd[:4])} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"  # a copy of the files git tracks (or would): no .venv, no build leftovers
    files = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    _run([UV, "build", "--wheel", "--quiet", "--out-dir", str(work / "dist"), str(src)])
    wheels = list((work / "dist").glob("writeback-*.whl"))
    assert len(wheels) == 1, wheels
    _run([UV, "venv", "--quiet", "--python", sys.executable, str(work / "venv")])
    python = work / "venv" / "bin" / "python"
    _run([UV, "pip", "install", "--quiet", "--python", str(python), str(wheels[0]), "-c", str(ROOT / "constraints.txt")])
    home = work / "airflow"
    for folder in ("plugins", "dags"):
        (home / folder).mkdir(parents=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "WRITEBACK", "PYTHON", "VIRTUAL_ENV"))}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "PATH": f"{python.parent}{os.pathsep}{env.get('PATH', '')}"})
    return {"work": work, "python": python, "bin": python.parent, "env": env, "wheel": wheels[0]}


def airflow(venv: dict, *args: str) -> str:
    return _run([str(venv["bin"] / "airflow"), *args], env=venv["env"], cwd=venv["work"]).stdout


def in_venv(venv: dict, code: str) -> str:
    return _run([str(venv["python"]), "-c", code], env=venv["env"], cwd=venv["work"]).stdout


def test_the_venv_is_clean_airflow_3_3_2_with_the_package_from_the_wheel(venv):
    found = json.loads(in_venv(venv, "import json, sys, airflow, writeback; print(json.dumps("
                                     "[airflow.__version__, writeback.__file__, sys.prefix != sys.base_prefix, "
                                     "[p for p in sys.path if 'site-packages' in p]]))"))
    version, package, isolated, site = found
    assert version == "3.3.2"
    assert isolated and str(venv["work"] / "venv") in package, "imported from the venv, not from this checkout"
    assert all(str(venv["work"] / "venv") in p for p in site), f"no system site packages: {site}"
    assert not list((Path(venv["env"]["AIRFLOW_HOME"]) / "plugins").iterdir()), "the plugins folder is empty"


def test_airflow_plugins_loads_the_review_plugin_from_the_entry_point(venv):
    plugins = {p["name"]: p for p in json.loads(airflow(venv, "plugins", "-o", "json"))}
    plugin = plugins["writeback"]
    assert "airflow.plugins" in plugin["source"] and "writeback.plugin:WritebackPlugin" in plugin["source"]
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/writeback"]
    assert {v["destination"] for v in plugin["external_views"]} == {"nav", "dag_run"}
    assert any("ReviewLink" in link for link in plugin["operator_extra_links"])


def test_airflow_providers_get_lists_everything_the_package_provides(venv):
    (info,) = json.loads(airflow(venv, "providers", "get", "writeback", "--full", "-o", "json"))
    assert info["package-name"] == "writeback" and info["versions"] == ["0.1.0"]
    modules = {kind: {m for entry in info[kind] for m in entry["python-modules"]}
               for kind in ("hooks", "operators", "sensors", "triggers")}
    assert modules["hooks"] == {"writeback.hooks.powerschool", "writeback.hooks.schoolengage", "writeback.hooks.store"}
    assert "writeback.operators.maintenance" in modules["operators"]
    assert modules["sensors"] == {"writeback.sensors.approval"}
    assert modules["triggers"] == {"writeback.triggers.approval"}
    assert info["extra-links"] == ["writeback.review.links.ReviewLink"]
    assert info["plugins"] == [{"name": "writeback", "plugin-class": "writeback.plugin.WritebackPlugin"}]
    assert {c["connection-type"] for c in info["connection-types"]} == {"powerschool", "schoolengage", "writeback_store"}
    assert set(info["config"]["writeback"]["options"]) == {"store_conn_id", "include_dir"}
    # every module it names imports from the installed package
    names = sorted(set().union(*modules.values()))
    in_venv(venv, f"import importlib; [importlib.import_module(m) for m in {names!r}]")


def test_connection_types_have_typed_form_fields_and_the_config_section_is_known(venv):
    hooks = {h["connection_type"]: h for h in json.loads(airflow(venv, "providers", "hooks", "-o", "json"))}
    assert hooks["powerschool"]["class"] == "writeback.hooks.powerschool.PowerSchoolHook"
    assert hooks["writeback_store"]["conn_id_attribute_name"] == "store_conn_id"
    forms = json.loads(in_venv(venv, """
import json
from airflow.providers_manager import ProvidersManager
pm = ProvidersManager()
pm.initialize_providers_hooks()
widgets = {k: v.field for k, v in pm.connection_form_widgets.items() if k.split("__")[1] in
           ("powerschool", "schoolengage", "writeback_store")}
print(json.dumps({"widgets": widgets, "behaviours": {k: pm.field_behaviours.get(k) for k in
                  ("powerschool", "schoolengage", "writeback_store")}}, default=str))
"""))
    widgets = forms["widgets"]
    timeout = widgets["extra__powerschool__timeout"]
    assert timeout["schema"]["type"] == ["number", "null"] and timeout["schema"]["title"] == "Timeout (seconds)"
    assert widgets["extra__powerschool__max_retries"]["schema"]["type"] == ["integer", "null"]
    assert "extra__writeback_store__sslmode" in widgets and "extra__schoolengage__per_page" in widgets
    assert forms["behaviours"]["powerschool"]["relabeling"]["login"] == "OAuth client ID"
    assert "login" in forms["behaviours"]["schoolengage"]["hidden_fields"]
    assert airflow(venv, "config", "get-value", "writeback", "store_conn_id").strip() == ""


def test_the_writeback_command_migrates_a_store_named_by_an_airflow_connection(venv):
    db = venv["work"] / "store.db"
    env = {**venv["env"], "AIRFLOW_CONN_WB_STORE": json.dumps({"conn_type": "sqlite", "host": str(db)}),
           "AIRFLOW__WRITEBACK__STORE_CONN_ID": "wb_store"}
    run = [str(venv["bin"] / "writeback"), "store", "migrate"]
    before = subprocess.run([*run, "--check"], env=env, cwd=venv["work"], capture_output=True, text=True, timeout=120)
    assert before.returncode == 1 and "at none" in before.stdout, before.stdout + before.stderr
    out = _run(run, env=env, cwd=venv["work"]).stdout
    assert "connection 'wb_store'" in out and "-> " in out
    done = subprocess.run([*run, "--check"], env=env, cwd=venv["work"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    no_store = {k: v for k, v in env.items() if k != "AIRFLOW__WRITEBACK__STORE_CONN_ID"}
    done = subprocess.run([str(venv["bin"] / "writeback"), "runs"], env=no_store, cwd=venv["work"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no writeback store is configured" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
