"""Apache Kafka 4.x, KRaft combined mode (one node: broker + controller), run from Maven Central jars on Java 17+.

The jars are those of the package's pom.xml (kafka_2.13, kafka-tools, Log4j2), resolved once with `mvn` into ~/.m2;
the resolved classpath is cached in the state folder. The data directory is <state folder>/kafka-<port>/data, so
storage tools can open <log_dir>/<topic>-<partition>/.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import uuid
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from ._process import BrokerError, Record, cause_line, free_port, home, process_start_ticks, spawn, wait_ready
from .probe import cluster_id

DEFAULT_PORT = 9095
DEFAULT_HEAP = "512m"
MIN_JAVA = 17
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
POM = Path(str(resources.files(__package__) / "pom.xml"))  # package data: works from a wheel

_LOG4J = """status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.out.ref = OUT
"""

# Releases chronik-perf runs: Kafka 4.x (KRaft only; the perf tools' output is parsed in every format from 4.0 on).
_RELEASE = re.compile(r"4\.\d+\.\d+")

# What mvn prints when Maven Central cannot be reached.
_NO_NETWORK = r"Could not (transfer|resolve)|No plugin found|UnknownHost|unreachable|Connection refused|offline"

# English number formatting whatever the machine's locale (Kafka's perf tools print with printf).
_LOCALE = ["-Duser.language=en", "-Duser.country=US"]

# The JVM options Kafka's bin/kafka-run-class.sh gives every tool (its KAFKA_JVM_PERFORMANCE_OPTS default) ...
TOOL_JVM_OPTIONS = ["-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
                    "-XX:+ExplicitGCInvokesConcurrent", "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true"]
# ... and its heap: kafka-run-class.sh's -Xmx256M, which kafka-producer-perf-test.sh and kafka-consumer-perf-test.sh
# raise to -Xmx512M.
TOOL_HEAP = {"org.apache.kafka.tools.ProducerPerformance": "512m", "org.apache.kafka.tools.ConsumerPerformance": "512m"}


class KafkaJava(NamedTuple):
    """How to run Kafka's classes: the java executable, the jar classpath, the Kafka version, a quiet log config."""

    java: str
    classpath: str
    version: str
    log4j_config: str

    def command(self, main_class: str, *args: str, heap: str | None = None) -> list[str]:
        """A command line running main_class (e.g. org.apache.kafka.tools.ProducerPerformance) with args, with the
        JVM options and heap Kafka's own scripts give that tool."""
        heap = heap or TOOL_HEAP.get(main_class, "256m")
        return [self.java, f"-Xmx{heap}", *TOOL_JVM_OPTIONS, *_LOCALE,
                f"-Dlog4j2.configurationFile={self.log4j_config}", "-cp", self.classpath, main_class, *args]


def pinned_version(pom: Path = POM) -> str:
    """The Kafka version the pom pins."""
    try:
        match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    except OSError:
        raise BrokerError(f"Kafka's Maven pom is missing ({pom}): reinstall chronik-perf") from None
    if not match:
        raise BrokerError(f"{pom} does not set <kafka.version>")
    return match.group(1).strip()


def java_executable() -> str:
    """The java to run Kafka with ($JAVA_HOME/bin/java, else java on PATH), checked to be Java 17 or newer."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        raise BrokerError(f"Java {MIN_JAVA}+ is needed to run Kafka and none was found on PATH or in JAVA_HOME: "
                          f"install a JDK {MIN_JAVA}+ (e.g. apt-get install openjdk-17-jre-headless)")
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerError(f"{java} -version failed ({exc}): fix the Java install or JAVA_HOME") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(match.group(1)) if match else 0
    if major == 1 and match.group(2):
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise BrokerError(f"{java} is Java {major or 'of unknown version'}; Kafka 4 needs Java {MIN_JAVA}+: "
                          f"install a newer JDK and put it first on PATH or set JAVA_HOME")
    return java


def _mvn_classpath(pom: Path, out: Path) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise BrokerError("mvn (Apache Maven) is not on PATH and the Kafka jars are not cached yet: "
                          "install Maven (e.g. apt-get install maven)")
    log = out.with_suffix(".mvn.log")
    with open(log, "wb") as f:
        try:
            code = subprocess.run([mvn, "-B", "-q", "-f", str(pom), DEPENDENCY_PLUGIN + ":build-classpath",
                                   f"-Dmdep.outputFile={out}"], stdout=f, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=1800).returncode
        except subprocess.TimeoutExpired:
            code = -1
    if code != 0 or not out.exists():
        text = log.read_text(errors="replace")
        if re.search(r"Could not find artifact org\.apache\.kafka", text):
            raise BrokerError(f"Maven Central has no Kafka {pinned_version(pom)}: choose a released version "
                              f"(mvn log: {log})")
        if re.search(_NO_NETWORK, text, re.I):
            raise BrokerError(f"mvn could not download the Kafka jars from Maven Central (no network?) and they "
                              f"are not in ~/.m2 yet: connect and retry (mvn log: {log})")
        raise BrokerError(f"mvn failed to resolve the Kafka jars (exit {code}); see {log}")


def release_pom(version: str | None, jars: Path) -> Path:
    """The pom to resolve: the package's for its pinned release (or version None), else a copy of it in ``jars``
    pinning another Kafka 4.x release."""
    if version is None or version == pinned_version():
        return POM
    if not _RELEASE.fullmatch(version):
        raise BrokerError(f"Kafka version {version!r}: chronik-perf runs Kafka 4.x releases (4.0.0 and later, "
                          f"e.g. {pinned_version()})")
    pom = jars / f"pom-{version}.xml"
    pom.write_text(re.sub(r"<kafka\.version>[^<]+</kafka\.version>", f"<kafka.version>{version}</kafka.version>",
                          POM.read_text()))
    return pom


def kafka_java(version: str | None = None) -> KafkaJava:
    """Java and the classpath of Kafka's jars (broker, tools, logging) of release ``version`` (default: the one the
    package's pom pins), fetched with mvn on first use."""
    java = java_executable()
    jars = home() / "maven-classpath"
    jars.mkdir(parents=True, exist_ok=True)
    pom = release_pom(version, jars)
    version = pinned_version(pom)
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    cp_file = jars / f"classpath-{version}-{digest}.txt"
    classpath = cp_file.read_text().strip() if cp_file.exists() else ""
    if not classpath or not all(os.path.exists(j) for j in classpath.split(os.pathsep)):
        cp_file.unlink(missing_ok=True)
        _mvn_classpath(pom, cp_file)
        classpath = cp_file.read_text().strip()
    log4j = jars / "log4j2-tools.properties"
    if not log4j.exists():
        log4j.write_text(_LOG4J.format(level="WARN"))
    return KafkaJava(java, classpath, version, str(log4j))


def _cluster_id() -> str:
    """A random KRaft cluster id: 16 random bytes in unpadded URL-safe base64 (not starting with '-')."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _stored_cluster_id(meta: Path) -> str | None:
    """The cluster id in a formatted data dir's meta.properties, if any."""
    try:
        match = re.search(r"^cluster\.id=(\S+)", meta.read_text(errors="replace"), re.M)
    except OSError:
        return None
    return match.group(1) if match else None


def server_properties(*, host: str, port: int, controller_port: int, data_dir: Path,
                      advertised_host: str, advertised_port: int, properties: dict | None) -> dict[str, str]:
    """The single-node KRaft configuration; `properties` entries override ours."""
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{advertised_host}:{advertised_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    props.update({str(k): str(v) for k, v in (properties or {}).items()})
    return props


def launch(folder: Path, *, host: str, port: int, timeout: float, fresh: bool = False,
           properties: dict | None = None, advertised_host: str | None = None, advertised_port: int | None = None,
           heap: str = DEFAULT_HEAP, jvm_options: list[str] | None = None,
           version: str | None = None) -> tuple[Record, subprocess.Popen]:
    """Format (first time or fresh) and start a KRaft broker of release ``version`` (default: the pinned one) on
    host:port; wait until it answers Metadata."""
    jv = kafka_java(version)
    data_dir = folder / "data"
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    props = server_properties(host=host, port=port, controller_port=free_port(), data_dir=data_dir,
                              advertised_host=advertised_host or host, advertised_port=advertised_port or port,
                              properties=properties)
    config = folder / "server.properties"
    config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    log4j = folder / "log4j2.properties"
    log4j.write_text(_LOG4J.format(level="INFO"))
    log_file = folder / "kafka.log"
    common = ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true", *_LOCALE,
              f"-Dlog4j2.configurationFile={log4j}", *(jvm_options or [])]
    meta = data_dir / "meta.properties"
    cid = _stored_cluster_id(meta) or _cluster_id()
    if not meta.exists():
        fmt = subprocess.run([jv.java, "-Xmx256m", *common, "-cp", jv.classpath, "kafka.tools.StorageTool",
                              "format", "-t", cid, "-c", str(config)],
                             capture_output=True, text=True, timeout=300)
        if fmt.returncode != 0:
            cause = cause_line(fmt.stdout + fmt.stderr) or "no output"
            raise BrokerError(f"formatting Kafka's storage in {data_dir} failed: {cause}")
    proc = spawn([jv.java, f"-Xms{heap}", f"-Xmx{heap}", *common, "-cp", jv.classpath, "kafka.Kafka", str(config)],
                 log_file, cwd=folder)
    bootstrap = f"{host}:{port}"
    wait_ready(proc, lambda: cluster_id(bootstrap) == cid, timeout, "kafka", log_file)
    record = Record("kafka", bootstrap, jv.version, proc.pid, process_start_ticks(proc.pid), str(log_file),
                    [str(data_dir)])
    return record, proc
