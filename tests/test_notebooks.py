"""The example notebooks run top to bottom on the embedded local model, as a user would run them.

Each notebook is executed by a real Jupyter kernel (nbclient + ipykernel) with its working folder set
to examples/, so relative paths such as "seeds.jsonl" resolve as they do for a user. The runs go to a
temporary folder through ORCA_MATH_EXAMPLE_OUT. Slow: about a minute per notebook on two CPU cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("llama_cpp", reason="the notebooks use the embedded local model (extra 'local')")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CELL_TIMEOUT_S = 300

pytestmark = pytest.mark.slow


def _ensure_python3_kernel() -> None:
    """Make `python3` resolve to this interpreter's ipykernel.

    jupyter_client swaps a kernelspec's bare `python` for `sys.executable`, and ipykernel provides a
    native `python3` spec, so this normally holds already; where no spec is found (a bare venv without
    its share/jupyter), install one into the venv itself rather than the user's home.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        install(prefix=sys.prefix, kernel_name="python3")


def _run_notebook(name: str, out_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Execute examples/<name> and return every cell's text output, joined."""
    _ensure_python3_kernel()
    monkeypatch.setenv("ORCA_MATH_EXAMPLE_OUT", str(out_dir))
    notebook = nbformat.read(EXAMPLES / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell and the traceback, on any error
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", f"{name}: {output.get('ename')}: {output.get('evalue')}"
            if "text" in output:
                texts.append(output["text"])
            texts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


def test_committed_notebooks_have_no_outputs():
    for path in sorted(EXAMPLES.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} was committed with outputs"


def test_quickstart_notebook_runs_and_shows_the_funnel(tmp_path, monkeypatch):
    text = _run_notebook("quickstart.ipynb", tmp_path, monkeypatch)

    # The funnel of the first run, with every stage, then the resumed run.
    assert "seeds" in text and "final rows:" in text
    for stage in ("harden", "solve", "verify", "filter"):
        assert f"\n{stage} " in text, f"the funnel has no {stage} line"
    assert "drops.jsonl:" in text and "failures.jsonl:" in text
    assert "resumed: True | same run key: True" in text
    assert "BEFORE:" in text or "no usable hardened problem" in text
    run_dirs = list((tmp_path / "quickstart" / "runs").iterdir())
    assert len(run_dirs) == 1, "the second run should have resumed the first, not started another"
    assert {p.name for p in (run_dirs[0] / "stages").iterdir()} == {"harden.jsonl", "solve.jsonl", "verify.jsonl", "filter.jsonl"}
    assert (tmp_path / "quickstart" / "dataset").is_dir()


def test_custom_agent_notebook_runs_its_extensions(tmp_path, monkeypatch):
    text = _run_notebook("custom_agent.ipynb", tmp_path, monkeypatch)

    # The build_messages override reached the prompt, and the parse override accepted a bare number.
    assert "names the unit of the answer" in text
    assert "final_answer='12'" in text
    assert "stock Teacher:" in text
    # The custom stage ran inside the pipeline and is in the run key with its parameter.
    assert "\ndrop_long " in text and "final rows:" in text
    assert "drop_long  DropLongProblems  params={'max_words': 22}" in text
    assert "agents={'teacher': 'UnitsTeacher'}" in text, "the subclassed agent should be in the run key"
