"""Person names in log lines: by structure (keys, log formats, phrases), by script, and by NER.

Structure finds most names in logs: the value of `user=`, `"customer": "..."`, the remote
user of an access log, `for <name>` in a message, the login names that sshd, PAM, su, sudo
and cron write, home directories. System and role accounts (`root`, `news`, `test7`) stay
readable. spaCy's NER runs only on lines where a capitalized word pair is left
unexplained, batched, with every other pipe disabled.
"""

from __future__ import annotations

import bisect
import re
from functools import cache
from importlib import resources
from urllib.parse import unquote

from privacy.scrubber import prefilter
from privacy.scrubber.config import PERSON
from privacy.scrubber.results import Result

# Keys whose value is a person even when it looks like a handle (dots, underscores, digits).
STRONG_KEYS = {
    "user",
    "username",
    "user_name",
    "login",
    "customer",
    "holder",
    "cardholder",
    "card_holder",
    "account_holder",
    "accountholder",
    "debtor",
    "creditor",
    "beneficiary",
    "payee",
    "payer",
    "recipient",
    "sender",
    "author",
    "owner",
    "assignee",
    "reporter",
    "requester",
    "member",
    "employee",
    "patient",
    "applicant",
    "signer",
    "remote_user",
    "customer_name",
    "full_name",
    "fullname",
    "display_name",
    "displayname",
    "billing_name",
    "shipping_name",
    "first_name",
    "firstname",
    "last_name",
    "lastname",
    "given_name",
    "family_name",
    "surname",
    "contact_name",
    "nickname",
    "buyer",
    "passenger",
    "guest",
    "addressee",
    "attendee",
    "driver",
    "client_name",
    "user_display_name",
    "ruser",
    "logname",
}
# Keys whose value is a login name (PAM's `user=`, `ruser=`, `logname=`, sudo's `USER=`).
ACCOUNT_KEYS = {"user", "username", "user_name", "login", "ruser", "logname", "remote_user"}
# Keys whose value is a person only when it is shaped like a natural name.
WEAK_KEYS = {"name", "subject", "contact", "q", "query", "search", "client", "value"}
_KEY_ALTERNATION = "|".join(sorted(STRONG_KEYS | WEAK_KEYS, key=len, reverse=True))

# "key": "value" (JSON, Python reprs), key=value / key="value" (logfmt, query strings).
_QUOTED = r"(?P<q>[\"'])(?P<qv>(?:\\.|(?!(?P=q)).){1,120}?)(?P=q)"
KEYS = frozenset(STRONG_KEYS | WEAK_KEYS)
# Two stages, for speed: any `key=` / `"key":` / `key "` first, then the value after a known key.
KEY_CANDIDATE = re.compile(
    r"(?<![\w.-])[\"']?(?P<key>[A-Za-z_]\w{0,30})[\"']?(?:\s*[:=]\s*|\s+(?=[\"']))"
)
VALUE = re.compile(_QUOTED + r"|(?P<uv>[^\s\"',;&()\[\]{}<>|]{1,80})")
# A logfmt value left unquoted may run on over capitalized words: customer=Matthew O'Donnell
# (a word followed by `=` is the next key; the look for it stops after 64 characters, so a
# long word costs linear time, not the square of its length).
_CONTINUATION = re.compile(r"(?:\s+(?:[A-Z][\w'’-]*\.?|[a-z]{1,3}(?=\s+[A-Z]))(?![\w.]{0,64}=))+")

# Access logs: `IP - user [date]` (nginx, apache) where user is not "-". The Common Log
# Format's date opens with a digit (`[10/Oct/2000:13:55:36 -0700]`); other formats have
# two fields then a bracket too (`2016-01-01 12:00:00,123 FATAL [main]`), a level there.
ACCESS_USER = re.compile(r"^\S+ \S+ (?P<user>[^\s\[\]\"-][^\s\[\]\"]{0,63}) \[(?=\d)")
# "for invalid user NAME from", "for NAME from" in any program's message (sshd's wording).
SSH_USER = re.compile(r"\bfor (?:invalid |illegal )?(?:user )?(?P<user>[\w.@-]{2,64}) from ")

# A login name in a position that only ever holds one: as sshd, PAM, su, sudo and cron
# write it (OpenSSH, Linux-PAM, shadow-utils, sudo and cron messages, the same on every
# system). Such a name is a person's account unless it is a system account (below): a
# login name has the same form whether a person owns it or a robot guesses it, so any
# other form counts (digits, dots, odd characters); only a purely numeric name is an id.
_ACCOUNT = r"(?P<user>[^\s\[\](),;=:'\"]{1,64})"
ACCOUNT_POSITIONS = [
    # sshd: "Invalid user NAME from HOST", "input_userauth_request: invalid user NAME
    # [preauth]", "Connection closed by invalid user NAME HOST port N [preauth]" and the
    # same with "authenticating user NAME" (OpenSSH 7.5 and later).
    re.compile(
        r"\b(?:[Ii]nvalid|[Ii]llegal|authenticating) user +"
        + _ACCOUNT
        + r"(?= from | \[preauth\]| port | ?$| \S+ port )"
    ),
    # sshd: "Failed password for [invalid user] NAME from", "Accepted publickey for NAME
    # from", "Postponed keyboard-interactive/pam for NAME from" (the method may hold a slash).
    re.compile(
        r"\b(?:Failed|Accepted|Postponed|Partial) [\w/-]+ for (?:invalid user |illegal user )?"
        + _ACCOUNT
        + r" from "
    ),
    # sshd: "Too many authentication failures for NAME", "maximum authentication attempts
    # exceeded for [invalid user] NAME from".
    re.compile(
        r"\b(?:authentication failures|authentication attempts exceeded) for "
        r"(?:invalid user )?" + _ACCOUNT + r"(?=[\s.]|$)"
    ),
    # sshd AllowUsers / DenyUsers and logins: "User NAME from HOST not allowed because ...",
    # "User NAME not allowed because account is locked", "User NAME, coming from HOST".
    re.compile(
        r"\bUser " + _ACCOUNT + r"(?:, coming from | from \S+ not allowed | not allowed because)"
    ),
    # PAM: "session opened for user NAME(uid=1000) by OTHER(uid=0)", "session closed for user
    # NAME": the account and, after `by`, the login that opened the session.
    re.compile(r"\bsession (?:opened|closed) for user " + _ACCOUNT),
    re.compile(r"\bsession opened for user \S+ by (?P<user>[^\s()]{1,64})\(uid="),
    # su: "(to TARGET) NAME on pts/0", also after "FAILED SU": both are accounts.
    re.compile(r"\(to (?P<target>[^\s()]{1,64})\) " + _ACCOUNT + r" on "),
    # sudo: "sudo:   NAME : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=...", "NAME : user NOT
    # in sudoers", "NAME : 3 incorrect password attempts" (USER= is a key: STRONG_KEYS).
    re.compile(r"\bsudo(?:\[\d+\])?: +" + _ACCOUNT + r" : "),
    # cron: "CRON[42]: (NAME) CMD (command)": the crontab's owner.
    re.compile(r"\(" + _ACCOUNT + r"\) CMD \("),
]
# Cheap check before ACCOUNT_POSITIONS: the words one of them needs.
ACCOUNT_GATE = re.compile(
    r"nvalid user|llegal user|authenticating user| for |User |session |\(to |sudo|\) CMD"
)
# Home directories name their owner: /home/NAME, /Users/NAME (macOS), /export/home/NAME
# (Solaris), /usr/home/NAME (FreeBSD), C:\Users\NAME and C:\Documents and Settings\NAME
# (Windows). Only the name is personal; the rest of the path stays readable.
HOME_DIRECTORY = re.compile(
    r"(?<![\w.])(?:/home|/Users|/export/home|/usr/home)/(?P<user>[A-Za-z0-9._-]{1,64})"
    r"(?![A-Za-z0-9._-])"
    r"|\b[A-Za-z]:\\+(?:Users|Documents and Settings)\\+(?P<win>[^\\/\s\"'<>|:*?]{1,64})"
    r"(?=\\|\s|$|[\"'])"
)
# Hadoop names things after the user a job runs as: the HDFS client's lease renewer
# thread ("LeaseRenewer:NAME@namenode:9000") and MapReduce's staging directory
# (".../staging/NAME/.staging/job_..."). Spark's SecurityManager lists the users of its
# access lists ("Changing view acls to: svc,NAME", "users with view permissions: Set(svc,
# NAME)"); a group list is no person.
HADOOP_USER = re.compile(
    r"\bLeaseRenewer:(?P<user>[^\s@\]]{1,64})@"
    r"|/staging/(?P<staged>[A-Za-z0-9._-]{1,64})/\.staging\b"
)
SPARK_ACLS = re.compile(
    r"(?:\bacls to: |\busers with \w+ permissions: Set\()(?P<list>[\w.-]+(?:, ?[\w.-]+)*)"
)

# Accounts that belong to the system, to software or to a role, not to a person: the base
# accounts of Linux distributions, the BSDs and macOS, the service accounts that server
# packages create, cloud, container and CI images' default users (`ubuntu`, `runner`,
# `jovyan`), vendors' default logins and role names. The same name with digits
# after it (`test7`, `nagios2`) is the same kind of account.
SYSTEM_ACCOUNTS = frozenset(
    """
    root toor bin daemon adm lp sync shutdown halt mail news uucp operator games gopher ftp
    nobody nfsnobody nogroup sys man proxy www-data backup list irc gnats messagebus dbus
    sshd rpc rpcuser ntp postfix smmsp sendmail exim cyrus named bind xfs vcsa haldaemon
    avahi pcap distcc ident squid apache httpd nginx www mysql mariadb postgres pgsql
    oracle tomcat git svn cvs jenkins nagios zabbix hadoop hdfs yarn mapred spark zookeeper
    hbase hive elasticsearch redis mongodb memcached rabbitmq docker vagrant ec2-user
    ubuntu centos debian fedora pi syslog polkitd chrony colord geoclue pulse rtkit saned
    usbmux lightdm gdm sddm tss uuidd landscape pollinate lxd libvirt qemu kvm mdns netdev
    admin administrator guest test tester testing user users support default demo info
    service services system anonymous webmaster hostmaster postmaster noreply no-reply
    ftpuser deploy deployer monitor monitoring management manager master office sales
    temp tmp abc api boot web www-user filter unknown login shared public
    ubnt cisco plcmspip inspur matlab vnc redhat pgadmin
    runner gitlab-runner circleci travis buildkite-agent jovyan vscode node
    """.split()
)
_TRAILING_DIGITS = re.compile(r"\d+$")

_L = r"(?:[^\W\d_]|[\u0300-\u036f\u0900-\u0dff\u0e00-\u0e7f])"  # letters and their marks
LETTER_WORD = re.compile(_L + r"+(?:['’.-]" + _L + r"+)*\.?")
NON_LATIN = re.compile(
    r"[\u0370-\u03ff\u0400-\u04ff\u0530-\u058f\u0590-\u05ff\u0600-\u06ff\u0900-\u097f"
    r"\u0980-\u09ff\u0e00-\u0e7f\u10a0-\u10ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    r"\uac00-\ud7af]"
)
# Runs of non-Latin letters (one to four words): almost always a name in a log line.
NON_LATIN_RUN = re.compile(
    r"(?<![\w])(?:" + _L + r"*" + NON_LATIN.pattern + _L + r"*)"
    r"(?:[ ·・ʼ'](?:" + _L + r"*" + NON_LATIN.pattern + _L + r"*)){0,3}"
)
# Words that end a name in running text.
CONNECTORS = (
    "to",
    "from",
    "for",
    "and",
    "or",
    "by",
    "at",
    "on",
    "in",
    "with",
    "of",
    "the",
    "is",
    "was",
    "has",
    "had",
    "via",
    "not",
    "rejected",
    "declined",
    "failed",
)
_WORD = r"(?!(?:" + "|".join(CONNECTORS) + r")(?![\w']))" + _L + r"(?:" + _L + r"|['’.-])*(?![\w])"
NAME_RUN = _WORD + r"(?:,? " + _WORD + r"){0,3}"
# Phrases that introduce a person in free text.
_PHRASE_OPENERS = (
    r"for|to|from|by|[Cc]ustomer|[Uu]ser|[Hh]older|expected|[Dd]ear|[Hh]i|[Hh]ello|"
    r"[Cc]ontact|[Cc]ardholder|[Aa]ssignee|[Oo]wner|[Mm]ember|[Pp]atient|signed by|"
    r"created by|approved by|account of|profile of|details of|data of|on behalf of"
)
PHRASE = re.compile(
    r"(?:\b(?:" + _PHRASE_OPENERS + r")\s+|\((?:customer|user) )(?P<name>" + NAME_RUN + r")"
)
# Verbs after a name that opens a message.
_VERBS = (
    r"updated|changed|requested|logged|signed|deleted|created|reset|verified|confirmed|"
    r"cancell?ed|placed|submitted|uploaded|downloaded|viewed|opened|booked|paid|subscribed|"
    r"unsubscribed|registered|joined|left"
)
# A name opening a message: "Ana Lima updated billing details".
NAME_THEN_VERB = re.compile(r"(?:^|[\"':>] ?)(?P<name>" + NAME_RUN + r") (?:" + _VERBS + r")\b")
# Cheap check before NAME_THEN_VERB: most lines have none of its verbs.
VERB_GATE = re.compile(r" (?:" + _VERBS + r")\b")
# `user NAME not found` and similar authentication messages (Apache, PAM).
USER_STATUS = re.compile(
    r"\buser '?(?P<user>[\w.@-]{2,64})'? (?:not found|does not exist|unknown|is locked|"
    r"locked out|denied|authentication failure)"
)
# Quoted literals and tuple items (SQL, reprs): 'Ana Lima', "Brittany Aguilar", (1, Ana Lima, ..)
# Two words at least: one word alone is never a name by gazetteer_name. Both forms open
# with one of four characters, which lets `re` skip to them.
_NAMES_RUN = _WORD + r"(?:,? " + _WORD + r"){1,3}"
LITERAL = re.compile(
    r"(?:(?P<q>[\"'])(?P<qv>" + _NAMES_RUN + r")(?P=q)|[(,] (?P<tv>" + _NAMES_RUN + r")(?=,|\)))"
)
# `Ana Lima <ana.lima@example.org>`: a mailbox's display name (mail logs, headers). The
# address is found first; the name is read back from it.
MAILBOX = re.compile(r" <(?P<local>[^\s<>@%]{1,64})(?:@|%40)[\w-]+\.")
NAME_BEFORE = re.compile(r"(?P<name>" + NAME_RUN + r")[\"']?$")
# `key=` (logfmt, query strings) or `"key": ` (JSON, reprs) right before a value.
KEY_BEFORE = re.compile(
    r"(?:(?P<key>[A-Za-z_][\w.-]{0,30})=|[\"'](?P<qkey>[A-Za-z_][\w.-]{0,30})[\"']\s*:\s*)[\"']?$"
)
# Keys whose values are places, not people, in whatever script they are written.
PLACE_KEYS = {
    "city",
    "town",
    "country",
    "region",
    "state",
    "province",
    "district",
    "street",
    "address",
    "location",
    "place",
}
# Lower-case words inside names: "Ahmad bin Yusof", "Joost van der Meulen", "Ana de Souza".
PARTICLES = {
    "al",
    "bin",
    "binti",
    "bint",
    "ibn",
    "da",
    "das",
    "de",
    "del",
    "della",
    "der",
    "di",
    "do",
    "dos",
    "du",
    "el",
    "la",
    "le",
    "ten",
    "ter",
    "van",
    "von",
    "y",
    "zu",
}
JSON_ESCAPED = re.compile(r"\\u[0-9a-fA-F]{4}")
CAPITAL_PAIR = re.compile(r"\b[A-Z][a-z'’-]+(?: [A-Z]\.)? [A-Z][a-zA-Z'’-]+")

# Gates (privacy.scrubber.prefilter), each what its rule needs to find anything in ASCII
# text: a known key before `=`, `:` or a quoted value; the words ACCOUNT_GATE and VERB_GATE
# look for; a phrase word then a letter; a quoted or tuple value of two words or more (one
# word is never a name by gazetteer_name); a capitalized pair for NER.
_S = prefilter.SPACE
GATES = {
    prefilter.KEY: r"(?i)(?:" + _KEY_ALTERNATION + r")[\"']?(?:" + _S + r"*[:=]|" + _S + r"+[\"'])",
    prefilter.ACCOUNT: ACCOUNT_GATE.pattern,
    prefilter.VERB: VERB_GATE.pattern,
    prefilter.PHRASE: r"(?:\b(?:"
    + _PHRASE_OPENERS
    + r")"
    + _S
    + r"+|\((?:customer|user) )[A-Za-z]",
    prefilter.LITERAL: r"(?:[\"']|[(,] )[A-Za-z][A-Za-z'.-]*,? [A-Za-z]",
    prefilter.CAPITAL_PAIR: r"[A-Z][a-z'-]+(?: [A-Z]\.)? [A-Z]",
}

# Reverse-DNS identifiers: macOS bundle ids, Java packages, D-Bus and Android names
# (`com.example.agent`, `org.example.io.Channel`): a generic top-level domain, then at
# least two more parts. A person's handle has at most one or two dots and no such prefix.
REVERSE_DNS = re.compile(r"(?i)(?:com|org|net|io|edu|gov|int|mil|dev|app)\.[\w-]+\.[\w-]")
# Lower-case words that are never part of a person's name: pronouns, determiners, modal
# and auxiliary verbs. After `to` or `for` they start a verb phrase ("told me to run this
# job"), not a name. Words that are also particles or short surnames (de, do, he, an, so,
# no) are left out.
FUNCTION_WORDS = frozenset(
    """
    this that these those it its me my mine you your yours him his she hers we our ours
    they them their theirs there here what which who whom whose where why how any some
    each every all both either neither be been being am are were does did done will would
    shall should can could may might must if then than because while until also just only
    again already still yet not
    """.split()
)
# Words of hardware, power states and log levels: a capitalised pair with one of them
# ("Normal Sleep", "Clock Mode", "DNS Proxy", "JTAG Reset", "Interrupt Link") names a
# state, a setting or a part, not a person, whatever NER says. Words that are also common
# surnames (Power, Fan, Link, Low) are left out.
LOG_TERMS = frozenset(
    """
    mode reset sleep wake powered interrupt plug clock proxy module modules scanner driver
    kernel linux unix handler controller adapter interface device devices memory disk
    volume network socket timer sensor battery router engine mask temperature fatal
    critical normal idle inactive enabled disabled failure fault dump boot shutdown
    restart config settings storage daemon store off button
    scsi ansi pci pcie usb dns jtag asic acpi bios raid sata nic lan wan vpn ssl tls ssh
    tcp udp csi asl dhcp
    bye link interrupting exiting resuming suspending skipping committer thunderbolt
    """.split()
)
# English verbs that the name dictionary also lists as rare given names: in a log message
# they are verbs ("about to run checks", "failed to save draft"), not a name's first word.
VERBS = frozenset({"run", "save", "take", "merge", "skip"})

# Values that are never people, whatever the key says.
NOT_NAMES = {
    "-",
    "null",
    "none",
    "nil",
    "true",
    "false",
    "unknown",
    "anonymous",
    "admin",
    "root",
    "system",
    "guest",
    "test",
    "user",
    "users",
    "customer",
    "service",
    "default",
    "n/a",
    "na",
    "undefined",
    "nobody",
    "daemon",
    "www-data",
    "postgres",
    "ubuntu",
    "ec2-user",
    "api",
    "bot",
    "worker",
    "scheduler",
    "cron",
    "celery",
    "nginx",
    "redis",
    "mysql",
    "backup",
    "support",
    "billing",
    "info",
    "debug",
    "warning",
    "error",
    "ok",
    "success",
    "failed",
    "app",
    "web",
    "deploy",
    "git",
    "jenkins",
    "ci",
    "prod",
    "staging",
    "readonly",
    "replica",
    "replicator",
    "monitor",
    "metrics",
    "grafana",
    "prometheus",
    "svc",
    "sa",
    "operator",
}
TECH_WORDS = {
    "service",
    "server",
    "client",
    "worker",
    "queue",
    "task",
    "job",
    "request",
    "response",
    "error",
    "exception",
    "timeout",
    "payment",
    "invoice",
    "order",
    "account",
    "session",
    "token",
    "cache",
    "database",
    "db",
    "api",
    "http",
    "https",
    "json",
    "sql",
    "id",
    "uuid",
    "retry",
    "retrying",
    "failed",
    "success",
    "update",
    "updated",
    "created",
    "deleted",
    "the",
    "a",
    "an",
    "of",
    "and",
    "or",
    "in",
    "on",
    "at",
    "with",
    "is",
    "was",
    "not",
    "no",
    "invalid",
    "unknown",
    "billing",
    "address",
    "profile",
    "password",
    "email",
    "phone",
    "card",
    "iban",
    "user",
    "customer",
    "name",
    "login",
    "logout",
    "signup",
    "event",
    "page",
    "status",
    "code",
    "message",
    "level",
    "info",
    "warn",
    "debug",
    "trace",
    "get",
    "post",
    "put",
    "delete",
    "patch",
    "true",
    "false",
    "null",
    "none",
    "new",
    "old",
    "connection",
    "host",
    "port",
    "file",
    "path",
    "line",
    "module",
    "class",
    "method",
    "version",
    "release",
    "build",
    "deploy",
    "health",
    "check",
    "ready",
    "started",
    "stopped",
    "completed",
    "processing",
    "processed",
    "pending",
    "done",
    "sent",
    "received",
    "mismatch",
    "verification",
    "declined",
    "approved",
    "closed",
    "opened",
    "report",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "utc",
    "gmt",
    "ms",
    "s",
    "min",
    "mb",
    "kb",
    "gb",
    "seconds",
}
# Words of dates, user agents and server messages: a capitalized pair with one of them is
# not a name, and not worth reading with NER.
TECH_WORDS |= {
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
    "sat",
    "sun",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "mac",
    "os",
    "nt",
    "windows",
    "intel",
    "iphone",
    "ipad",
    "cpu",
    "like",
    "gecko",
    "khtml",
    "mozilla",
    "linux",
    "android",
    "chrome",
    "safari",
    "firefox",
    "edge",
    "mobile",
    "unavailable",
    "internal",
    "gateway",
    "bad",
    "found",
    "too",
    "many",
    "requests",
    "forbidden",
    "unauthorized",
    "conflict",
    "caused",
    "exception",
    "replica",
    "channel",
    "duplicate",
    "entry",
    "notice",
    "pid",
    "thread",
    "main",
    "process",
    "pool",
}
TECH_WORDS |= LOG_TERMS


@cache
def first_names() -> frozenset[str]:
    """Lower-case given names from gender-guesser's name dictionary (about 48,000 names
    from many countries), minus words that are common in logs."""
    names = given_names(resources.files("gender_guesser") / "data" / "nam_dict.txt")
    return frozenset(n for n in names if len(n) > 2) - TECH_WORDS - NOT_NAMES - VERBS


def given_names(path) -> set[str]:
    """The names of gender-guesser's dictionary, read as its Detector(case_sensitive=False)
    reads them (a `+` joins parts: written together, spaced or hyphenated) but without the
    per-country figures it also parses, in a tenth of the time."""
    names: set[str] = set()
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if not line or line[0] in "#=":
                continue
            name = line.split(None, 2)[1].lower()
            if "+" in name:
                names.update(name.replace("+", joint) for joint in ("", " ", "-"))
            else:
                names.add(name)
    return names


def _words(value: str) -> list[str]:
    return [w for w in re.split(r"[\s+]+", value) if w]


def natural_name(value: str) -> bool:
    """1 to 5 words of letters, like "Ana Lima", "Lyons, Te Ariki", "P. Simpson", "李小龙"."""
    value = value.replace("%2C", ",").replace("\\u", "u")
    words = _words(value.replace(",", " "))
    if not 1 <= len(words) <= 5:
        return False
    if any(not LETTER_WORD.fullmatch(w) for w in words):
        return False
    lowered = [w.lower().rstrip(".") for w in words]
    if all(w in TECH_WORDS or w in NOT_NAMES for w in lowered):
        return False
    if any(w in FUNCTION_WORDS for w in words):  # lower-case as written: "Will" is a name
        return False
    if len(words) == 1:
        word = words[0]
        # One word: a capitalized given name, or non-Latin script.
        return bool(NON_LATIN.search(word)) or (
            word[:1].isupper() and word[1:].islower() and word.lower() in first_names()
        )
    if all(w.islower() for w in words):
        return lowered[0] in first_names() or lowered[-1] in first_names()
    return not any(_camel(w) for w in words)


def _camel(word: str) -> bool:
    return sum(c.isupper() for c in word[1:]) > 0 and not word.isupper() and "-" not in word


def handle_like(value: str) -> bool:
    """A username: jade.armstrong, ines_macedo, neil69, vdominguez (no spaces, mostly letters)."""
    if not 2 <= len(value) <= 64 or " " in value or "@" in value or "%40" in value:
        return False
    if value.lower() in NOT_NAMES or value.lower() in TECH_WORDS:
        return False
    letters = sum(c.isalpha() for c in value)
    if letters < 2 or letters < len(value) * 0.6:
        return False
    if re.fullmatch(r"[0-9a-fA-F-]{8,}", value):  # hex ids, uuids
        return False
    if REVERSE_DNS.match(value):
        return False
    return bool(re.fullmatch(r"[^\W_][\w.'’-]*", value))


def system_account(value: str) -> bool:
    """An account of the system, of software or of a role (`root`, `cyrus`, `test9`), or a
    value that is never a person (NOT_NAMES)."""
    lowered = value.lower()
    stem = _TRAILING_DIGITS.sub("", lowered) or lowered
    return any(v in SYSTEM_ACCOUNTS or v in NOT_NAMES for v in (lowered, stem))


def account_name(value: str) -> bool:
    """A person's login name where the position says it is a login name: any form with a
    letter (a numeric name is a uid, `#12#` a placeholder), unless a system account."""
    return (
        1 <= len(value) <= 64
        and any(c.isalpha() for c in value)
        and not system_account(value)
        and not REVERSE_DNS.match(value)
    )


class NameStructure:
    """PERSON by where a value stands: keys, access-log user fields, phrases, non-Latin runs
    (as a Presidio recognizer: privacy.scrubber.presidio.NameStructureRecognizer)."""

    ENTITIES = [PERSON]

    def __init__(self) -> None:
        first_names()  # the gazetteer, loaded once per process

    def scan(self, text: str, gates: int = prefilter.ALL) -> list[Result]:
        """Findings in `text`; `gates` (prefilter bits) skips the rules that cannot match."""
        results: list[Result] = []

        def add(start: int, end: int, score: float) -> None:
            if end > start:
                results.append(Result(PERSON, start, end, score))

        for candidate in KEY_CANDIDATE.finditer(text) if gates & prefilter.KEY else ():
            key = candidate.group("key").lower()
            if key not in KEYS:
                continue
            at = candidate.end()
            if text.startswith("<", at):  # dovecot and mail servers: user=<name>
                at += 1
            match = VALUE.match(text, at)
            if match is None:
                continue
            spaced = "=" not in candidate.group() and ":" not in candidate.group()
            if match.group("qv") is not None:
                value, start = match.group("qv"), match.start("qv")
            elif spaced:  # `user 'J. Mellor'` yes, `login attempt` no
                continue
            else:
                value, start = match.group("uv"), match.start("uv")
                tail = _CONTINUATION.match(text, match.end("uv"))
                if tail and value[:1].isupper():
                    value = text[start : tail.end()]
            value_clean = value.strip()
            start += len(value) - len(value.lstrip())
            decoded = value_clean.replace("+", " ")
            if "%" in decoded:
                decoded = unquote(decoded)
            decoded = JSON_ESCAPED.sub("x", decoded) if "\\u" in decoded else decoded
            if key in ACCOUNT_KEYS and system_account(decoded):
                ok = False  # user=cyrus, ruser=root: the system's accounts stay readable
            elif key in STRONG_KEYS:
                ok = (
                    natural_name(decoded) or handle_like(decoded) or bool(NON_LATIN.search(decoded))
                )
            else:
                ok = natural_name(decoded) and (
                    key not in {"msg", "message", "text", "to", "from", "for", "by"}
                    or len(_words(decoded)) <= 3
                )
            if ok and "=" not in value_clean:
                add(start, start + len(value_clean), 0.85)

        access = ACCESS_USER.match(text)
        if access and handle_like(access.group("user")):
            add(access.start("user"), access.end("user"), 0.85)
        for match in SSH_USER.finditer(text) if " from " in text else ():
            if handle_like(match.group("user")) and not system_account(match.group("user")):
                add(match.start("user"), match.end("user"), 0.85)
        account = gates & prefilter.ACCOUNT and (
            gates != prefilter.ALL or ACCOUNT_GATE.search(text) is not None
        )
        for pattern in ACCOUNT_POSITIONS if account else ():
            for match in pattern.finditer(text):
                for group in ("user", "target") if "target" in pattern.groupindex else ("user",):
                    if account_name(match.group(group)):
                        add(match.start(group), match.end(group), 0.85)
        if "/home/" in text or "/Users/" in text or "\\" in text:
            for match in HOME_DIRECTORY.finditer(text):
                group = "user" if match.group("user") is not None else "win"
                if account_name(match.group(group)):
                    add(match.start(group), match.end(group), 0.8)
        hadoop = "LeaseRenewer:" in text or "/.staging" in text
        for match in HADOOP_USER.finditer(text) if hadoop else ():
            group = "user" if match.group("user") is not None else "staged"
            if account_name(match.group(group)):
                add(match.start(group), match.end(group), 0.8)
        for match in SPARK_ACLS.finditer(text) if "acls to: " in text or " Set(" in text else ():
            base = match.start("list")
            for part in re.finditer(r"[\w.-]+", match.group("list")):
                if account_name(part.group()):
                    add(base + part.start(), base + part.end(), 0.8)
        for mailbox in MAILBOX.finditer(text) if " <" in text else ():
            match = NAME_BEFORE.search(text, max(0, mailbox.start() - 80), mailbox.start())
            if match:
                span = display_name(text, match.start("name"), match.end("name"), mailbox["local"])
                if span:
                    add(*span, 0.75)

        for match in PHRASE.finditer(text) if gates & prefilter.PHRASE else ():
            span = best_name(text, match.start("name"), match.end("name"), prose=True)
            if span:
                add(*span, 0.7)
        verb = gates & prefilter.VERB and (
            gates != prefilter.ALL or VERB_GATE.search(text) is not None
        )
        for match in NAME_THEN_VERB.finditer(text) if verb else ():
            span = best_name(text, match.start("name"), match.end("name"), prose=True)
            if span and span[1] == match.end("name"):
                add(*span, 0.7)
        for match in USER_STATUS.finditer(text) if "user " in text else ():
            if handle_like(match.group("user")):
                add(match.start("user"), match.end("user"), 0.8)
        for match in LITERAL.finditer(text) if gates & prefilter.LITERAL else ():
            if match.group("qv") is not None:
                value = match.group("qv")
                if gazetteer_name(value) and not (
                    value.islower() and key_before(text, match.start("qv"))
                ):  # msg="shim disconnected": the key said what a lower-case value is
                    add(match.start("qv"), match.end("qv"), 0.65)
                continue
            # A tuple item, or "Last, First" over two: (7, Ana Lima, null), (8, Lima, Ana, x)
            value = match.group("tv")
            while value and not (
                ("," not in value or capitalized(value.replace(",", " ").split()))
                and gazetteer_name(value)
            ):
                value = value.rpartition(", ")[0]
            if value:
                add(match.start("tv"), match.start("tv") + len(value), 0.65)

        if not text.isascii():
            for match in NON_LATIN_RUN.finditer(text):
                if key_before(text, match.start()) not in PLACE_KEYS:
                    add(match.start(), match.end(), 0.75)
        return results


def best_name(text: str, start: int, end: int, *, prose: bool) -> tuple[int, int] | None:
    """The longest leading run of words in text[start:end] that reads as a person's name."""
    words = list(re.finditer(r"[^\s,]+", text[start:end]))
    for count in range(min(len(words), 4), 0, -1):
        stop = start + words[count - 1].end()
        value = text[start:stop]
        if not natural_name(value):
            continue
        tokens = value.replace(",", " ").split()
        words_proper = [t for t in tokens if len(t) > 3 or "." not in t]  # initials aside
        capital = not words_proper or capitalized(words_proper)
        if capital and (len(tokens) >= 2 or tokens[0].lower() in first_names()):
            return start, stop
        if not capital and gazetteer_name(value):
            return start, stop
    return None


def key_before(text: str, start: int) -> str | None:
    """The lower-cased key of the `key=value` / `"key": "value"` whose value starts at `start`."""
    match = KEY_BEFORE.search(text, max(0, start - 40), start)
    return (match.group("key") or match.group("qkey")).lower() if match else None


def capitalized(tokens: list[str]) -> bool:
    """Every word capitalized, name particles aside; the first and last always."""
    if not (tokens[0][:1].isupper() and tokens[-1][:1].isupper()):
        return False
    return all(t[:1].isupper() or t in PARTICLES for t in tokens[1:-1])


def display_name(text: str, start: int, end: int, local: str) -> tuple[int, int] | None:
    """The trailing words of text[start:end] that name the mailbox `local`: a capitalized
    name that is in the gazetteer or spelled out in the local part (`Ana Lima <ana.lima@`)."""
    words = list(re.finditer(r"[^\s,]+", text[start:end]))
    local = local.lower()
    for count in range(min(len(words), 4), 1, -1):
        first = start + words[-count].start()
        value = text[first:end]
        tokens = value.replace(",", " ").split()
        if not (natural_name(value) and capitalized(tokens)):
            continue
        if gazetteer_name(value) or all(t.lower().rstrip(".") in local for t in tokens):
            return first, end
    return None


def gazetteer_name(value: str) -> bool:
    """Two to four words, a known given name first or last (family-name-first orders)."""
    tokens = value.replace(",", " ").split()
    if not 2 <= len(tokens) <= 4 or not natural_name(value):
        return False
    scripts = [bool(NON_LATIN.search(t)) for t in tokens]
    if any(scripts):
        return all(scripts)
    lowered = [t.lower().rstrip(".") for t in tokens]
    if any(t in TECH_WORDS for t in lowered):
        return False
    names = first_names()
    if not (lowered[0] in names or lowered[-1] in names):
        return False
    return capitalized(tokens) or all(t.islower() for t in tokens)


def ner_windows(
    text: str, covered: list[tuple[int, int]], gates: int = prefilter.ALL
) -> list[tuple[int, int]]:
    """Stretches around capitalized word pairs that no finding explains: what NER should read.

    The model reads a window of a few words either side, not the whole line: log lines are
    long, names are short, and NER cost grows with the text.
    """
    if not gates & prefilter.CAPITAL_PAIR:
        return []
    spans = _union(covered)
    span_starts = [s for s, _ in spans]
    windows: list[tuple[int, int]] = []
    for match in CAPITAL_PAIR.finditer(text):
        k = bisect.bisect_right(span_starts, match.start()) - 1
        if k >= 0 and match.start() < spans[k][1]:  # a finding explains it
            continue
        words = match.group().lower().replace(".", "").split()
        if any(w in TECH_WORDS for w in words):
            continue
        start = max(0, match.start() - 25)
        end = min(len(text), match.end() + 25)
        start = text.rfind(" ", 0, start) + 1 if start else 0
        stop = text.find(" ", end)
        end = len(text) if stop == -1 else stop
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows


def _union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The union of (start, end) spans as sorted, disjoint spans."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def ner_people(doc) -> list[tuple[int, int]]:
    """PERSON entities of a spaCy doc that survive log-specific checks."""
    spans = []
    for ent in doc.ents:
        if ent.label_ != PERSON:
            continue
        text = ent.text.strip(" '\".,:;()")
        if not text or not natural_name(text) or len(text.split()) > 4:
            continue
        if any(w.lower() in LOG_TERMS for w in re.split(r"[\s,]+", text)):
            continue
        start = ent.start_char + ent.text.find(text)
        spans.append((start, start + len(text)))
    return spans
