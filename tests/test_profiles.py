"""mlflow.yaml profiles: chosen by --profile, ORCHESTRA_PROFILE or the file; MLFLOW_TRACKING_URI
overrides only the file's default; the team server command keeps the store password out of argv."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestra import ConfigError
from orchestra.app.cli import main
from orchestra.tracking.settings import load_tracking_settings
from orchestra.tracking.team import team_server_command

PROFILES = """\
experiment: shared
profile: local
profiles:
  local: {tracking_uri: "sqlite:///mlruns/mlflow.db", artifact_location: mlruns/artifacts}
  team: {tracking_uri: "http://mlflow.example:5000", artifact_location: null}
  direct: {tracking_uri: "postgresql://orchestra:${TEST_DB_PASSWORD}@db:5432/mlflow"}
"""


@pytest.fixture
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ORCHESTRA_PROFILE", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "mlflow.yaml"
    path.write_text(PROFILES)
    return path


def test_the_file_names_the_default_and_a_flag_or_the_environment_another(profiles, monkeypatch):
    local = load_tracking_settings(profiles)
    assert local.tracking_uri == f"sqlite:///{profiles.parent / 'mlruns' / 'mlflow.db'}"
    assert local.experiment == "shared"  # keys outside the profiles are shared
    team = load_tracking_settings(profiles, profile="team")
    assert (team.tracking_uri, team.artifact_location, team.experiment) == (
        "http://mlflow.example:5000",
        None,
        "shared",
    )
    monkeypatch.setenv("ORCHESTRA_PROFILE", "team")
    assert load_tracking_settings(profiles).tracking_uri == "http://mlflow.example:5000"


def test_mlflow_tracking_uri_overrides_the_default_profile_but_not_a_chosen_one(profiles, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://elsewhere:5000")
    assert load_tracking_settings(profiles).tracking_uri == "http://elsewhere:5000"
    assert load_tracking_settings(profiles, profile="team").tracking_uri == "http://mlflow.example:5000"


def test_an_unknown_profile_is_an_error_naming_the_known_ones(profiles, tmp_path):
    with pytest.raises(ConfigError, match=r"no profile 'tema' \(profiles: direct, local, team\)"):
        load_tracking_settings(profiles, profile="tema")
    flat = tmp_path / "flat.yaml"
    flat.write_text("tracking_uri: sqlite:///x.db\n")
    assert load_tracking_settings(flat).tracking_uri.endswith("x.db")  # a file without profiles
    with pytest.raises(ConfigError, match="defines no `profiles:`"):
        load_tracking_settings(flat, profile="team")


def test_a_profile_takes_its_password_from_the_environment_and_never_shows_it(profiles, monkeypatch):
    with pytest.raises(ConfigError, match="TEST_DB_PASSWORD is not set"):
        load_tracking_settings(profiles, profile="direct")
    monkeypatch.setenv("TEST_DB_PASSWORD", "s3cret-pw-42")
    direct = load_tracking_settings(profiles, profile="direct")
    assert direct.tracking_uri == "postgresql://orchestra:s3cret-pw-42@db:5432/mlflow"
    assert "s3cret-pw-42" not in direct.ui_command()


def test_the_cli_profile_flag_chooses_the_profile(profiles, monkeypatch, capsys):
    monkeypatch.chdir(profiles.parent)
    monkeypatch.setenv("ORCHESTRA_PROFILE", "local")  # restored after the test: the flag sets it
    assert main(["--profile", "team", "ui", "--print"]) == 0
    assert "http://mlflow.example:5000" in capsys.readouterr().out


def test_the_team_server_gets_its_store_uri_through_the_environment(tmp_path):
    uri = "postgresql://mlflow:hunter22@db:5432/mlflow"
    environment, argv = team_server_command(uri, tmp_path / "artifacts", host="0.0.0.0", workers=4)
    assert environment["MLFLOW_BACKEND_STORE_URI"] == uri and "hunter22" not in " ".join(argv)
    assert argv[1:] == [
        "server", "--artifacts-destination", str(tmp_path / "artifacts"),
        "--host", "0.0.0.0", "--port", "5000", "--workers", "4",
    ]  # fmt: skip
    assert environment["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    with pytest.raises(ValueError, match="needs a SQL store"):
        team_server_command("http://mlflow:5000", tmp_path)
