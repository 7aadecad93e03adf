"""The LogHub benchmark's labeller (benchmarks/loghub_labels.py) on made-up lines.

Pins the rules of docs/loghub-labels.md: which values are personal data and which only look
like it. Every line here is invented in the shape of a LogHub format; none comes from LogHub.
Addresses are arbitrary numbers in public ranges (the documentation ranges are not global,
so they would be labelled as not personal).
"""

from __future__ import annotations

import pytest

from benchmarks.loghub_labels import EMAIL
from benchmarks.loghub_labels import IPV4
from benchmarks.loghub_labels import IPV6
from benchmarks.loghub_labels import NOT_PERSONAL
from benchmarks.loghub_labels import PERSON
from benchmarks.loghub_labels import PHONE
from benchmarks.loghub_labels import SYSTEMS
from benchmarks.loghub_labels import USER
from benchmarks.loghub_labels import is_system_account
from benchmarks.loghub_labels import label_line
from benchmarks.loghub_labels import system_of


def spans(system: str, line: str) -> list[tuple[str, str, str]]:
    """(text, type, rule) of every label, in order."""
    return [(line[lab.start : lab.end], lab.type, lab.rule) for lab in label_line(system, line)]


def personal(system: str, line: str) -> list[tuple[str, str]]:
    return [(text, kind) for text, kind, _ in spans(system, line) if kind != NOT_PERSONAL]


def kept(system: str, line: str) -> list[tuple[str, str]]:
    """(text, why) of the values labelled as not personal."""
    return [(text, rule) for text, kind, rule in spans(system, line) if kind == NOT_PERSONAL]


# Addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "sshd[123]: Received disconnect from 81.2.69.142: 11: Bye Bye [preauth]",
        "authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=81.2.69.142",
        "reverse mapping checking getaddrinfo for host.example.net [81.2.69.142] failed",
        "rlogind[9]: login refused from 81.2.69.142 (81.2.69.142): bad password",
        "[error] [client 81.2.69.142] File does not exist: /srv/www/favicon.ico",
        "Connecting to server at gateway-3/81.2.69.142:8030",
        "net: v4(en0:81.2.69.142) changed",
        "app.exe - 81.2.69.142:443 open through proxy proxy.example.edu:8080 HTTPS",
    ],
)
def test_a_routable_ipv4_address_is_personal_in_every_position(line):
    found = personal("Linux", line)
    assert found and all(pair == ("81.2.69.142", IPV4) for pair in found)


def test_addresses_inside_reverse_dns_host_names_are_personal():
    line = (
        "ftpd[1]: connection from 81.2.69.142 (host142.69.2.81.isp.example.net) and "
        "(cust-81-2-69-142-st.example.net) and (dsl-081-002-069-142.example.net) "
        "rhost=h81-2-69-142.example.net rhost=n081002069142.example.com "
        "rhost=81.2.69.142.dynamic.example.net"
    )
    assert personal("Linux", line) == [
        ("81.2.69.142", IPV4),
        ("142.69.2.81", IPV4),  # a digit run at the end of a word starts it
        ("81-2-69-142", IPV4),
        ("081-002-069-142", IPV4),
        ("81-2-69-142", IPV4),  # the first number ends the word "h81"
        ("081002069142", IPV4),  # packed: four groups of three digits
        ("81.2.69.142", IPV4),
    ]


def test_private_loopback_unspecified_and_reserved_addresses_are_not_personal():
    line = (
        "to 10.1.2.3:50010 from /172.20.0.5 via 192.168.1.20, local 127.0.0.1, "
        "bind 0.0.0.0:2181, test net 192.0.2.7, shared 100.64.1.1, host guest-10-1-2-3"
    )
    assert personal("HDFS", line) == []
    assert kept("HDFS", line) == [
        ("10.1.2.3", "private address"),
        ("172.20.0.5", "private address"),
        ("192.168.1.20", "private address"),
        ("127.0.0.1", "loopback address"),
        ("0.0.0.0", "unspecified address"),  # noqa: S104 - a log value
        ("192.0.2.7", "reserved address"),
        ("100.64.1.1", "reserved address"),
        ("10-1-2-3", "private address"),
    ]


def test_versions_network_numbers_and_numbers_that_are_not_addresses():
    line = (
        "loaded v1.2.3.4 (lib.dll version 0.0.0.6) build 2.0.1.7 on network 81.2.69.0 "
        "route 81.2.0.0/16; oid 1.2.840.10045.2.1; stamp 2011-02-07-11.21.09.120034; "
        "ver 10.0.19041.1; pkg~amd64~~7.2.1.0"
    )
    assert personal("Linux", line) == []
    assert kept("Linux", line) == [
        ("1.2.3.4", "version"),
        ("0.0.0.6", "version"),
        ("2.0.1.7", "version"),
        ("81.2.69.0", "network number"),
        ("81.2.0.0", "network number"),
        ("7.2.1.0", "version"),
    ]


def test_windows_servicing_logs_hold_versions_not_addresses():
    line = "CBS    Read out package: Package_for_KB1234567~0123456789abcdef~amd64~~81.2.69.142"
    assert personal("Windows", line) == []
    assert kept("Windows", line) == [("81.2.69.142", "version")]


def test_hardware_addresses_are_neither_ipv6_nor_ipv4():
    line = (
        "BSSID changed to 02:1a:2b:3c:4d:5e; paired ( 81-22-69-14-ab-cd ); "
        "chip 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5 ip=10.0.0.9"
    )
    assert personal("Mac", line) == []
    assert [why for _, why in kept("Mac", line)] == ["hardware address"] * 3 + ["private address"]


def test_ipv6_global_is_personal_also_right_after_a_colon():
    line = (
        "IPV6 Addr: 2a02:c7f:1234:5600:21a:2bff:fe3c:4d5e; "
        "net v6(en0:2a02:c7f:1234:5600::17) DNS; peer [2a02:c7f:1234:5600::18]:443"
    )
    assert personal("Mac", line) == [
        ("2a02:c7f:1234:5600:21a:2bff:fe3c:4d5e", IPV6),
        ("2a02:c7f:1234:5600::17", IPV6),
        ("2a02:c7f:1234:5600::18", IPV6),
    ]


def test_ipv6_link_local_unspecified_and_code_are_not_personal():
    line = (
        "bridge0 (FE80:0000:0000:0000:1C2D:3E4F:5A6B:7C8D) peer/0:0:0:0:0:0:0:0:2181:Server@1 "
        "Foo::cache Node::cancel 22:19:58:518"
    )
    assert personal("Zookeeper", line) == []
    assert kept("Zookeeper", line) == [
        ("FE80:0000:0000:0000:1C2D:3E4F:5A6B:7C8D", "link-local address"),
        ("0:0:0:0:0:0:0:0", "unspecified address"),
    ]


def test_a_link_local_ipv6_address_made_from_a_mac_is_personal():
    line = (
        "awdl0 (FE80:0000:0000:0000:021A:2BFF:FE3C:4D5E) IPV6 Addr: fe80:0:0:0:c6b3:1ff:fecd:467f"
    )
    assert personal("Mac", line) == [
        ("FE80:0000:0000:0000:021A:2BFF:FE3C:4D5E", IPV6),
        ("fe80:0:0:0:c6b3:1ff:fecd:467f", IPV6),
    ]


# E-mail addresses, phones, names ----------------------------------------------------------


def test_email_addresses_plain_and_percent_encoded():
    line = (
        "sync jane_doe@mail.example.com@https://dav.example.com/principals/users/"
        "jane_doe%40mail.example.com/ url=https://13800138000%40mail.example.com@host.example.com/"
        " to root@example.org from src@node-1"
    )
    assert personal("Mac", line) == [
        ("jane_doe@mail.example.com", EMAIL),
        ("jane_doe%40mail.example.com", EMAIL),
        ("13800138000%40mail.example.com", EMAIL),  # a numeric local part is personal
    ]
    assert kept("Mac", line) == [("root@example.org", "system mailbox")]


def test_phone_numbers():
    line = "call +44 20 7946 0958 or tel: 020 7946 0959, sms 13812345678; pid 1234567890123"
    assert personal("Android", line) == [
        ("+44 20 7946 0958", PHONE),
        ("020 7946 0959", PHONE),
        ("13812345678", PHONE),
    ]


def test_people_named_in_credits_but_not_companies():
    line = "Example serial driver v2.1 (c) Jane Roe; fw_tables: (C) 1999-2003 Example Networks"
    assert personal("Linux", line) == [("Jane Roe", PERSON)]


# User names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "sshd[1]: Invalid user jsmith from 81.2.69.142",
        "sshd[1]: input_userauth_request: invalid user jsmith [preauth]",
        "sshd[1]: Failed password for jsmith from 81.2.69.142 port 4022 ssh2",
        "sshd[1]: Failed password for invalid user jsmith from 81.2.69.142 port 4022 ssh2",
        "sshd[1]: Failed none for invalid user jsmith from 81.2.69.142 port 4022 ssh2",
        "sshd[1]: Accepted publickey for jsmith from 81.2.69.142 port 4022 ssh2",
        "sshd[1]: Disconnecting: Too many authentication failures for jsmith [preauth]",
        "sshd[1]: pam_unix(sshd:session): session opened for user jsmith by (uid=0)",
        "sshd(pam_unix)[1]: session closed for user jsmith",
        "sshd(pam_unix)[1]: authentication failure; logname= uid=0 tty=ssh ruser= user=jsmith",
        "sshd(pam_unix)[1]: authentication failure; logname=jsmith uid=500 tty=ssh ruser=",
        "sudo:   jsmith : TTY=pts/0 ; PWD=/tmp ; USER=root ; COMMAND=/bin/ls",
        "CRON[42]: (jsmith) CMD (run-parts /etc/cron.hourly)",
        "loader: cannot open /home/jsmith/bin/app",
        "Extract jar to C:\\Users\\jsmith\\AppData\\Local\\Temp",
        "WARN [LeaseRenewer:jsmith@namenode-1:9000] Failed to renew lease",
        "Server environment:user.name=jsmith",
        "sendmail[7]: kB2C3dE4000123: from=jsmith, size=2048, class=0, nrcpts=1",
    ],
)
def test_people_s_user_names_in_auth_and_path_positions(line):
    names = [pair for pair in personal("OpenSSH", line) if pair[1] == USER]
    assert names == [("jsmith", USER)]


def test_su_names_both_the_target_and_the_caller():
    line = "su[5]: (to operator) jsmith on pts/1"
    assert personal("Linux", line) == [("jsmith", USER)]
    assert kept("Linux", line) == [("operator", "system account")]


@pytest.mark.parametrize(
    "name",
    [
        "root",
        "admin",
        "Administrator",
        "guest",
        "test",
        "test7",
        "nagios3",
        "oracle",
        "ftp",
        "news",
        "cyrus",
        "yarn",
        "ubnt",
        "PlcmSpIp",
        "0",
        "1234",
        "0202",
        "#41#",
    ],
)
def test_system_role_vendor_and_numeric_accounts_are_not_personal(name):
    assert is_system_account(name)
    line = f"sshd[1]: Invalid user {name} from 10.0.0.1"
    assert personal("OpenSSH", line) == []


@pytest.mark.parametrize("name", ["jsmith", "wang", "lixiaoming", "pjones", "kim_h", "adnim"])
def test_other_names_in_user_name_positions_are_personal(name):
    assert not is_system_account(name)


def test_system_specific_user_name_rules():
    assert personal("BGL", "ciod: LOGIN chdir(/p/gb3/jsmith/run/case1) failed") == [
        ("jsmith", USER)
    ]
    assert personal("BGL", "core files for program /g/g7/jsmith2/bin/app") == [("jsmith2", USER)]
    spark = "SecurityManager: users with view permissions: Set(yarn, jsmith); acls to: yarn,jdoe"
    assert personal("Spark", spark) == [("jsmith", USER), ("jdoe", USER)]
    assert kept("Spark", spark) == [("yarn", "system account"), ("yarn", "system account")]
    assert personal("Spark", "Input split: hdfs://10.0.0.5:9000/jsmith/logs/x.log:0+7") == [
        ("jsmith", USER)
    ]
    assert personal(
        "Hadoop", "File: hdfs://nn:9000/tmp/hadoop-yarn/staging/jsmith/.staging/job"
    ) == [("jsmith", USER)]
    assert personal("HDFS", "NameSystem.allocateBlock: /user/jsmith/out/part-0001") == [
        ("jsmith", USER)
    ]
    # BGL's cluster paths and HDFS's home folders are read in their own logs only.
    assert personal("Linux", "chdir(/p/gb2/jsmith/run)") == []
    assert personal("Apache", "GET /api/user/profile HTTP/1.1") == []


def test_placeholders_are_loghub_s_in_thunderbird_only():
    line = (
        "- 1200000000 2008.01.10 #3# Jan 10 21:20:00 #3#/#3# sshd[77]: User #12#, coming from #13#"
    )
    assert personal("Thunderbird", line) == []
    assert {why for _, why in kept("Thunderbird", line)} == {"LogHub placeholder"}
    assert kept("HealthApp", "getDailyTotals = 1600000000000##1234##5678") == []


# Putting it together ------------------------------------------------------------------------


def test_personal_spans_never_overlap_and_win_over_not_personal_ones():
    line = "rhost=host-81-2-69-142.example.net user=jsmith url=https://81.2.69.142%40x.example.com/"
    found = label_line("Linux", line)
    personal_spans = [lab for lab in found if lab.personal]
    for a in personal_spans:
        for b in found:
            if a is not b:
                assert not (a.start < b.end and b.start < a.end)


def test_systems_and_file_names():
    assert len(SYSTEMS) == 16
    assert system_of("/data/loghub/Linux/Linux_2k.log") == "Linux"
    with pytest.raises(ValueError):
        system_of("Linux.log")
    with pytest.raises(ValueError):
        label_line("Solaris", "anything")
