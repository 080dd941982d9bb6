"""Data-parallel training over MPI (fastbp/distributed.py, fit(comm=...)).

As PyTorch's DDP tests do, the distributed fit is compared with one process stepping
through the same rows: every step of N ranks with batch b must equal one full-batch
step of one process on those rows together (float64, 1e-10). Every case is launched
as ``mpiexec -n N python tests/mpi_worker.py ...`` in a subprocess with a timeout, so a
hang fails the test instead of blocking the suite; the worker writes its results and
the assertions are made here.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fastbp

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "mpi_worker.py")
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(fastbp.__file__)))
TIMEOUT = 180


def _mpiexec():
    """The mpiexec command with the flags its implementation needs, or a skip reason."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None, 'mpi4py is not installed (pip install "fastbp[mpi]")'
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        return None, 'mpiexec is not on the PATH (pip install "fastbp[mpi]" brings mpich)'
    try:
        version = subprocess.run([mpiexec, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"mpiexec --version failed: {exc}"
    command = [mpiexec]
    if "Open MPI" in version or "OpenRTE" in version:
        # More ranks than cores, in a container, maybe as root.
        command += ["--oversubscribe", "--bind-to", "none"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-run-as-root")
    return command, None


MPIEXEC, SKIP_REASON = _mpiexec()
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason=SKIP_REASON or "")


def _env():
    # The child imports this fastbp (built in place or installed); one thread per rank
    # unless a test asks otherwise.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        p for p in (PACKAGE_PARENT, os.environ.get("PYTHONPATH", "")) if p)}


def launch(n, args, tmp_path, timeout=TIMEOUT, env=None):
    """``mpiexec -n n python ARGS`` in tmp_path; a hang is a failure, not a stuck suite."""
    command = [*MPIEXEC, "-n", str(n), sys.executable, *args]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                env=env or _env(), cwd=tmp_path)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(command)} did not finish in {timeout} s (a hang?); "
                    f"stderr: {exc.stderr}")
    return result


def run_worker(n, scenario, config, tmp_path, check=True):
    # python -m mpi4py: an exception in the worker's own code aborts every rank at once.
    result = launch(n, ["-m", "mpi4py", WORKER, scenario, json.dumps(config), str(tmp_path)],
                    tmp_path)
    if check:
        assert result.returncode == 0, (f"exit {result.returncode}\n{result.stdout}\n"
                                        f"{result.stderr}")
    return result


def rank_reports(tmp_path, n):
    reports = []
    for r in range(n):
        with open(tmp_path / f"rank{r}.json") as f:
            reports.append(json.load(f))
    return reports


BASE = {"sizes": [6, 9, 4], "epochs": 3, "batch_size": 4, "learning_rate": 0.05}

# Equivalence cases: optimiser settings, shards (uneven; a rank out of rows early).
EQUIVALENCE = {
    "sgd": {"optimizer": "sgd"},
    "momentum-l2": {"optimizer": "sgd", "momentum": 0.9, "l2": 0.01},
    "nesterov": {"optimizer": "sgd", "momentum": 0.8, "nesterov": True},
    "adam-l2": {"optimizer": "adam", "learning_rate": 0.01, "l2": 0.02},
}


@pytest.mark.parametrize("backend", ["cython", "numpy", "cython-overlap"])
@pytest.mark.parametrize("case", sorted(EQUIVALENCE))
@pytest.mark.parametrize("n, shards, shuffle", [
    (2, [13, 6], True),        # rank 1 runs out of rows after 2 of 4 steps
    (3, [9, 14, 3], False),    # uneven, in order; rank 2 has one partial step
])
def test_equals_one_process_stepping_through_the_same_rows(tmp_path, backend, case, n,
                                                             shards, shuffle):
    # cython-overlap: the reduction of the upper layers starts before layer 0's gradient
    # is computed (fastbp.distributed.OVERLAP_FIRST_LAYER).
    config = {**BASE, **EQUIVALENCE[case], "shards": shards, "shuffle": shuffle,
              "backend": backend.split("-")[0], "overlap": backend.endswith("overlap"),
              "val_shards": [4, 7, 2][:n]}
    run_worker(n, "equivalence", config, tmp_path)
    result = np.load(tmp_path / "result.npz")
    params, reference = result["params"], result["reference"]
    # Every rank ends with exactly the same parameters ...
    for r in range(1, n):
        assert np.array_equal(params[r], params[0]), f"rank {r} differs from rank 0"
    # ... they moved from rank 0's initial ones (the ranks started from other seeds) ...
    assert not np.allclose(params[0], result["initial"])
    # ... and equal one process's steps through the same rows.
    np.testing.assert_allclose(params[0], reference, rtol=1e-10, atol=1e-10)
    histories = json.loads(str(result["histories"]))
    reference_history = json.loads(str(result["reference_history"]))
    for r in range(n):
        assert histories[r] == histories[0], "the history differs between ranks"
    for key, values in reference_history.items():
        np.testing.assert_allclose(histories[0][key], values, rtol=1e-10, atol=1e-12,
                                   err_msg=key)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("n, shards, shuffle, zero_step", [
    (2, [13, 6], True, False),
    (3, [9, 14, 3], False, True),   # every rank's rows of step 1 weigh 0: skipped
])
def test_sample_weights_equal_one_process_with_the_same_weights(tmp_path, backend, n, shards,
                                                                shuffle, zero_step):
    config = {**BASE, **EQUIVALENCE["adam-l2"], "shards": shards, "shuffle": shuffle,
              "backend": backend, "weighted": True, "zero_step": zero_step,
              "val_shards": [4, 7, 2][:n]}
    run_worker(n, "equivalence", config, tmp_path)
    result = np.load(tmp_path / "result.npz")
    params = result["params"]
    for r in range(1, n):
        assert np.array_equal(params[r], params[0]), f"rank {r} differs from rank 0"
    np.testing.assert_allclose(params[0], result["reference"], rtol=1e-10, atol=1e-10)
    histories = json.loads(str(result["histories"]))
    for key, values in json.loads(str(result["reference_history"])).items():
        np.testing.assert_allclose(histories[0][key], values, rtol=1e-10, atol=1e-12,
                                   err_msg=key)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("n", [2, 3])
def test_divergence_on_one_rank_stops_every_rank_with_the_same_rollback(tmp_path, backend,
                                                                        n):
    config = {"sizes": [5, 7, 3], "task": "regression", "activation": "identity",
              "shards": [10, 17, 9][:n], "batch_size": 4, "epochs": 3,
              "optimizer": "sgd", "learning_rate": 0.01, "shuffle": False,
              "backend": backend}
    run_worker(n, "divergence", config, tmp_path)
    reports = rank_reports(tmp_path, n)
    # Rank 1's row 8 is step 3 of epoch 1; every rank stops there.
    for report in reports:
        assert report["outcome"].startswith(
            "FloatingPointError: training diverged in epoch 1, batch 3 of "), report
        assert report["restored"], "parameters were not restored to the fit's start"
    assert len({report["outcome"] for report in reports}) == 1
    assert len({report["params_sum"] for report in reports}) == 1


@pytest.mark.parametrize("n", [2, 3])
def test_a_bad_argument_on_one_rank_is_raised_on_every_rank(tmp_path, n):
    config = {"sizes": [5, 7, 3], "shards": [10, 17, 9][:n], "batch_size": 4}
    run_worker(n, "bad_argument", config, tmp_path)
    reports = rank_reports(tmp_path, n)
    assert reports[1]["outcome"] == ("ValueError: X has 4 features but the network has 5 "
                                     "inputs (sizes[0])")
    for r in [0, *range(2, n)]:
        assert reports[r]["outcome"] == (
            f"ValueError: fit(comm=...) stopped on every process: process 1 of {n} raised "
            f"ValueError: X has 4 features but the network has 5 inputs (sizes[0])")


def test_a_ctrl_c_on_one_rank_while_fit_checks_its_arguments_stops_every_rank(tmp_path):
    config = {"sizes": [5, 7, 3], "shards": [10, 17], "batch_size": 4}
    result = launch(2, ["-m", "mpi4py", WORKER, "interrupt_while_checking",
                        json.dumps(config), str(tmp_path)], tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    reports = rank_reports(tmp_path, 2)
    assert reports[1]["outcome"] == "KeyboardInterrupt: "
    assert reports[0]["outcome"] == ("KeyboardInterrupt: fit(comm=...) stopped on every "
                                     "process: process 1 of 2 was interrupted (Ctrl-C)")

def test_ranks_that_disagree_are_refused_and_threads_are_shared(tmp_path):
    config = {"sizes": [5, 7, 3], "shards": [10, 17], "batch_size": 4}
    env = _env()
    del env["OMP_NUM_THREADS"]
    result = launch(2, ["-m", "mpi4py", WORKER, "disagreement_and_threads", json.dumps(config),
                        str(tmp_path)], tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    for report in rank_reports(tmp_path, 2):
        assert report["outcome"].startswith(
            "ValueError: fit(comm=...): every process must fit the same network with the "
            "same settings; process 1 differs: settings "), report["outcome"]
        assert "'learning_rate': 0.1" in report["outcome"]
        # Both ranks on this machine: its cores shared between them.
        assert report["threads"] == max(1, report["cores"] // 2), report


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("n, stop", [(2, "interrupt"), (3, "interrupt"), (2, "epochs")])
def test_rank_0_writes_checkpoints_and_every_rank_resumes_exactly(tmp_path, backend, n,
                                                                  stop):
    config = {"sizes": [5, 7, 3], "shards": [10, 17, 9][:n], "batch_size": 4, "epochs": 3,
              "optimizer": "adam", "learning_rate": 0.01, "backend": backend}
    if stop == "interrupt":
        # Ctrl-C on the last rank only, in epoch 2 (5 steps per epoch).
        config["interrupt_at"] = 7
    else:
        config["first_epochs"] = 2
    run_worker(n, "checkpoint_resume", config, tmp_path)
    reports = rank_reports(tmp_path, n)
    result = np.load(tmp_path / "result.npz")
    for r, report in enumerate(reports):
        if stop == "interrupt":
            # Every rank stopped, at the same step (identical parameters).
            assert report["interrupted"] is True
            assert np.array_equal(result["stopped"][r], result["stopped"][0])
        # Only rank 0 wrote (after each epoch and at the Ctrl-C).
        assert (report["writes"] > 0) == (r == 0), (r, report["writes"])
        # Resumed from rank 0's file, every rank ends as the uninterrupted fit.
        assert report["epochs_trained"] == 3
        assert report["equal"], f"rank {r}: resumed parameters differ"
        assert all(report["history_equal"].values()), report["history_equal"]
        assert np.array_equal(result["params"][r], result["params"][0])


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_an_exception_on_one_rank_mid_fit_aborts_the_job_instead_of_hanging(tmp_path,
                                                                              backend):
    config = {"sizes": [5, 7, 3], "shards": [10, 17], "batch_size": 4, "backend": backend}
    # Without python -m mpi4py: fit itself must not leave rank 0 waiting.
    result = launch(2, [WORKER, "local_failure", json.dumps(config), str(tmp_path)],
                    tmp_path, timeout=60)
    assert result.returncode != 0
    assert ("fastbp: process 1 of 2 failed during a distributed fit (MemoryError: rank 1 "
            "ran out of memory (simulated)); aborting the MPI job") in result.stderr


def test_a_checkpoint_rank_0_cannot_write_stops_every_rank(tmp_path):
    config = {"sizes": [5, 7, 3], "shards": [10, 17, 9], "batch_size": 4}
    run_worker(3, "checkpoint_failure", config, tmp_path)
    reports = rank_reports(tmp_path, 3)
    assert reports[0]["outcome"] == ("OSError: [Errno 28] No space left on device "
                                     "(simulated)")
    for report in reports[1:]:
        assert report["outcome"] == ("RuntimeError: process 0 failed writing the "
                                     "checkpoint: OSError: [Errno 28] No space left on "
                                     "device (simulated)")
    assert {report["epochs_trained"] for report in reports} == {1}


FINAL = re.compile(r"^test accuracy (\d\.\d{4}), test loss (\d+\.\d{4}), best epoch (\d+) "
                   r"\((\d\.\d{4})\); trained in \d+\.\d+ s$", re.M)


def test_cli_train_distributed_on_the_digits(tmp_path):
    single = subprocess.run([sys.executable, "-m", "fastbp", "train", "--quiet"],
                            capture_output=True, text=True, timeout=TIMEOUT, env=_env(),
                            cwd=tmp_path)
    assert single.returncode == 0, single.stderr
    result = launch(2, ["-m", "fastbp", "train", "--distributed", "--quiet",
                        "--save", "model.npz"], tmp_path)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    # One report (rank 0's), one model file.
    reports = FINAL.findall(result.stdout)
    assert len(reports) == 1, result.stdout
    assert result.stdout.count("data: digits") == 1
    assert "2 processes" in result.stdout
    assert (tmp_path / "model.npz").exists()
    accuracy = float(reports[0][0])
    single_accuracy = float(FINAL.findall(single.stdout)[0][0])
    # Two ranks of batch 32 train with batches of 64: about the single run's accuracy.
    assert accuracy > 0.93 and abs(accuracy - single_accuracy) < 0.03, (accuracy,
                                                                        single_accuracy)
    # --checkpoint on rank 0, --resume on every rank: the resumed run ends as a run of
    # as many epochs that never stopped.
    straight = launch(2, ["-m", "fastbp", "train", "--distributed", "--quiet", "--epochs",
                          "5"], tmp_path)
    first = launch(2, ["-m", "fastbp", "train", "--distributed", "--quiet", "--epochs", "3",
                       "--checkpoint", "run.ckpt"], tmp_path)
    resumed = launch(2, ["-m", "fastbp", "train", "--distributed", "--quiet", "--epochs", "5",
                         "--resume", "run.ckpt"], tmp_path)
    for run in (straight, first, resumed):
        assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    assert "resuming run.ckpt: 3 of 5 epochs trained" in resumed.stdout
    assert FINAL.findall(resumed.stdout)[0][:3] == FINAL.findall(straight.stdout)[0][:3]
    # An error before training (here on every rank) ends the job with status 2.
    bad = launch(2, ["-m", "fastbp", "train", "--distributed", "--data", "/nonexistent"],
                 tmp_path, timeout=60)
    assert bad.returncode == 2
    assert "fastbp: error: IDX directory /nonexistent does not exist" in bad.stderr


def test_one_process_with_comm_equals_fit_without_and_comm_is_checked(tmp_path):
    run_worker(1, "one_process", {}, tmp_path)
    (report,) = rank_reports(tmp_path, 1)
    assert report["max_difference"] < 1e-12
    assert report["loss_difference"] < 1e-12
    assert report["bad_comm"].startswith("TypeError: comm must be an mpi4py "
                                         "intra-communicator"), report
