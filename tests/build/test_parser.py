"""The Dockerfile parser and the shell-word expansion (runtime/build/dockerfile.py, words.py)."""

import pytest

from runtime.build import dockerfile, words
from runtime.errors import InvalidParameter


def test_continuations_comments_and_line_numbers():
    df = dockerfile.parse(
        "# a comment\n"
        "\n"
        "FROM busybox\n"
        "RUN echo one \\\n"
        "# a comment inside the continuation\n"
        "\n"
        "    && echo two\n"
        "  env  A=1\n"
        "COPY --chown=1:2 --from=build a b /dst/\n"
        'CMD ["sh", "-c", "echo hi"]\n'
        "CMD [not json\n")
    cmds = [(i.cmd, i.line) for i in df.instructions]
    assert cmds == [("FROM", 3), ("RUN", 4), ("ENV", 8), ("COPY", 9), ("CMD", 10), ("CMD", 11)]
    run = df.instructions[1]
    assert run.args == "echo one     && echo two" and run.json is None
    assert run.original == "RUN echo one     && echo two"
    copy = df.instructions[3]
    assert copy.flags == {"chown": "1:2", "from": "build"} and copy.args == "a b /dst/"
    assert df.instructions[4].json == ["sh", "-c", "echo hi"]
    assert df.instructions[5].json is None and df.instructions[5].args == "[not json"


def test_directives():
    df = dockerfile.parse("# syntax=docker/dockerfile:1.4\n# escape=`\nFROM x\nRUN a `\n b\n")
    assert df.escape == "`"
    assert df.instructions[1].args == "a  b"
    assert "ignoring the '# syntax=docker/dockerfile:1.4' directive" in df.notes[0]
    # a directive after a comment is a comment
    df = dockerfile.parse("# hello\n# escape=`\nFROM x\nRUN a \\\n b\n")
    assert df.escape == "\\" and df.instructions[1].args == "a  b"


@pytest.mark.parametrize("text,message", [
    ("FROM x\nRUN true\n\nFOO bar\n", "Dockerfile line 4: unknown instruction: FOO"),
    ("FROM x\nRUN <<EOF\nhi\nEOF\n", "Dockerfile line 2: RUN: heredocs (<<WORD) are not supported"),
    ("FROM x\nCOPY <<-'END' /x\n", "heredocs"),
    ("FROM x\nCOPY --bogus=1 a b\n", "Dockerfile line 2: COPY: unknown flag: --bogus"),
    ("FROM x\nSHELL /bin/bash -c\n", "SHELL requires the arguments to be in JSON form"),
    ("FROM x\nENV\n", "Dockerfile line 2: ENV requires at least one argument"),
    ("# escape=x\nFROM x\n", "invalid escape token"),
    ("# comment only\n", "has no instructions"),
    (b"FROM x\nRUN \xff\n", "not UTF-8"),
])
def test_parse_errors_name_the_line(text, message):
    with pytest.raises(InvalidParameter) as err:
        dockerfile.parse(text)
    assert message in str(err.value)


def test_shell_arithmetic_is_not_a_heredoc():
    df = dockerfile.parse("FROM x\nRUN echo $((1<<2))\n")
    assert df.instructions[1].args == "echo $((1<<2))"


def test_words_split_and_expand():
    env = {"A": "1", "EMPTY": "", "SP": "a b"}
    assert words.split('a="b c" d\\ e \'f g\'') == ['a="b c"', "d\\ e", "'f g'"]
    assert words.expand('x$A"$SP"\'$A\'\\$A', env) == "x1a b$A$A"
    assert words.expand("${A}${B:-def}${EMPTY:-e}${EMPTY-u}${A:+set}${B:+no}", env) == "1defeset"
    assert words.expand("$ 1 $", env) == "$ 1 $"
    assert words.expand_all("$A ${SP}", env) == ["1", "a b"]
    with pytest.raises(InvalidParameter):
        words.expand("${A", env)
    with pytest.raises(InvalidParameter):
        words.split('"open')
    with pytest.raises(InvalidParameter):
        words.expand("${A/x/y}", env)
