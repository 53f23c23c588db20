"""A layer's provider and ec2 settings (gun.layersettings): a table of what is refused, with the
field each sentence names, and hypothesis for the parser: whatever is typed is either a valid
setting or one InvalidParams naming its field, and settings read back as they were set."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun.errors import InvalidParams
from gun.layersettings import LayerSettings, check_provider, parse

OK = [
    ({"ami": "ami-0abc1234"}, LayerSettings(ami="ami-0abc1234")),
    ({"ami": "ami-0123456789abcdef0"}, LayerSettings(ami="ami-0123456789abcdef0")),
    ({"subnet": "subnet-0abc1234"}, LayerSettings(subnet="subnet-0abc1234")),
    (
        {"security_groups": "sg-0abc1234,sg-0def5678,sg-0abc1234"},
        LayerSettings(security_groups=("sg-0abc1234", "sg-0def5678")),
    ),
    ({"key_name": "deploy key"}, LayerSettings(key_name="deploy key")),
    ({"root": "/srv//gun/"}, LayerSettings(root="/srv/gun")),
]


@pytest.mark.parametrize(("given_", "want"), OK)
def test_settings_that_are_read(given_: dict[str, str], want: LayerSettings) -> None:
    assert parse("ec2", given_) == want


REFUSED = [
    ("ec2", {"ami": "ami-xyz"}, "ami 'ami-xyz' is not an AMI id (ami- and 8 or 17 hex digits)"),
    ("ec2", {"ami": "ami-0ABC1234"}, "ami 'ami-0ABC1234' is not an AMI id"),
    ("ec2", {"subnet": "sub-1"}, "subnet 'sub-1' is not a subnet id"),
    ("ec2", {"security_groups": ","}, "security_groups ',' must name 1 to 5 security groups"),
    (
        "ec2",
        {"security_groups": "sg-0abc1234,default"},
        "security_groups: 'default' is not a security group id",
    ),
    ("ec2", {"security_groups": ",".join(f"sg-{i:08x}" for i in range(6))}, "1 to 5"),
    ("ec2", {"key_name": " deploy"}, "key_name ' deploy' must be 1 to 255 printable ASCII"),
    ("ec2", {"key_name": "k\x00"}, "key_name 'k\\x00' must be"),
    ("ec2", {"root": "srv/gun"}, "root 'srv/gun' is invalid: give an absolute directory"),
    ("ec2", {"root": "/srv/../etc"}, "root '/srv/../etc' is invalid"),
    ("ec2", {"image": "ami-0abc1234"}, "'image' is not a layer setting: use one of ami, subnet"),
    (
        None,
        {"ami": "ami-0abc1234"},
        "ami= is a setting of provider ec2; this layer's provider is local (set provider=ec2",
    ),
    ("ssh", {"subnet": "subnet-0abc1234"}, "this layer's provider is ssh"),
]


@pytest.mark.parametrize(("provider", "given_", "said"), REFUSED)
def test_settings_that_are_refused(provider: str | None, given_: dict[str, str], said: str) -> None:
    with pytest.raises(InvalidParams) as e:
        parse(provider, given_)
    assert said in e.value.message
    assert "\n" not in e.value.message


def test_an_empty_value_unsets_a_setting_and_others_stay() -> None:
    before = LayerSettings(ami="ami-0abc1234", key_name="deploy")
    assert parse("ec2", {"key_name": ""}, before) == LayerSettings(ami="ami-0abc1234")
    assert parse(None, {"ami": "", "key_name": ""}, before) == LayerSettings()


def test_providers() -> None:
    for name in ("local", "ssh", "ec2"):
        assert check_provider(name) == name
    with pytest.raises(InvalidParams, match="provider 'gce' is unknown: use one of local, ssh"):
        check_provider("gce")


hexes = st.text("0123456789abcdef", min_size=8, max_size=8) | st.text(
    "0123456789abcdef", min_size=17, max_size=17
)
settings = st.builds(
    LayerSettings,
    ami=st.none() | hexes.map(lambda h: f"ami-{h}"),
    subnet=st.none() | hexes.map(lambda h: f"subnet-{h}"),
    security_groups=st.none()
    | st.lists(hexes.map(lambda h: f"sg-{h}"), min_size=1, max_size=5, unique=True).map(tuple),
    key_name=st.none()
    | st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    root=st.none() | st.from_regex(r"/[a-z][a-z0-9]{0,8}(/[a-z0-9_-]{1,8}){0,3}", fullmatch=True),
)


@given(settings)
def test_settings_read_back_as_typed_and_as_stored(s: LayerSettings) -> None:
    typed = dict(word.split("=", 1) for word in s.shown().split())
    assert parse("ec2", typed) == s
    assert LayerSettings.from_json(s.to_json()) == s


@given(st.sampled_from(["ami", "subnet", "security_groups", "key_name", "root"]), st.text())
def test_any_text_is_a_setting_or_one_sentence_naming_its_field(name: str, text: str) -> None:
    try:
        parse("ec2", {name: text})
    except InvalidParams as e:
        assert e.message.split()[0].rstrip(":") in (name, "root"), e.message
        assert name in e.message
