"""test_voice_e2e.py — the voice example end to end: espeak-ng speaks a
question into a WAV; q35-voice hears it with pocketsphinx, answers with the
tiny chat model (random weights: the words are noise, the pipeline is
real) and speaks the answer with espeak-ng, unloading the model while it
speaks. Checks:
  - the recognized text overlaps the question: at least half of the
    question's words are recognized. pocketsphinx's generic US English
    model on espeak-ng's synthetic voice gets the frequent words right and
    confuses the rarer ones ("what is the capital of france" comes back as
    "what is the capital on products", 4 of 6); a recognizer that heard
    nothing, or another sentence, shares 0-1 of these 6 words, so one half
    tells a working recognizer from a broken one without demanding more
    than this voice/model pair gives;
  - the first phrase reached the synthesizer before the reply ended (the
    answer is spoken while it is generated);
  - the output WAV holds audio (non-zero samples);
  - every stage's latency, and the unload/reload costs, are printed.
And the sound-device output where there is none: `--play` with PulseAudio
pointed at a socket that does not exist (so the result is the same on a
machine with a sound server) fails with a "no sound device" message before
the model is loaded.
Skipped (exit 0 with a message) where q35-voice was not built (no
libpocketsphinx-dev / libespeak-ng-dev) or the espeak-ng program is absent.
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

QUESTION = "What is the capital of France?"


def main():
    q35 = os.environ["Q35"]
    voice = os.path.join(os.path.dirname(q35), "q35-voice")
    if not os.path.exists(voice):
        print("SKIP: q35-voice not built (pocketsphinx / espeak-ng packages missing)")
        return 0
    espeak = shutil.which("espeak-ng")
    if not espeak:
        print("SKIP: the espeak-ng program is not installed")
        return 0
    model = os.environ["Q35_TINY_CHAT"]
    with tempfile.TemporaryDirectory() as tmp:
        q_wav = os.path.join(tmp, "question.wav")
        out_wav = os.path.join(tmp, "answer.wav")
        subprocess.run([espeak, "-w", q_wav, QUESTION], check=True)
        # Under LeakSanitizer (the sanitized CI run), what the speech
        # libraries keep until exit is theirs, not q35's.
        supp = os.path.join(tmp, "lsan.supp")
        with open(supp, "w") as f:
            f.write("leak:libespeak-ng\nleak:libpocketsphinx\nleak:libsphinxbase\n"
                    "leak:libsphinxad\nleak:libpcaudio\nleak:libpulse\n")
        env = dict(os.environ)
        env["LSAN_OPTIONS"] = "suppressions=" + supp + ":" + env.get("LSAN_OPTIONS", "")
        r = subprocess.run(
            [voice, "-m", model, "--in", q_wav, "--out", out_wav, "-n", "48",
             "--first-max", "16", "--fast", "--unload-for-tts", "-t", "2"],
            capture_output=True, text=True, timeout=300, env=env)
        log = r.stderr
        print(log)
        assert r.returncode == 0, "q35-voice failed"

        values = {}
        for line in log.splitlines():
            m = re.match(r"^([a-z_]+) (-?[0-9.]+)$", line)
            if m:
                values[m.group(1)] = float(m.group(2))
        for key in ["latency_asr_final_ms", "latency_llm_first_token_ms",
                    "latency_first_phrase_ms", "latency_first_audio_ms",
                    "latency_eos_to_first_audio_ms", "unload_ms", "reload_ms"]:
            assert key in values, "not printed: " + key
            assert values[key] >= 0, key

        heard = re.search(r"^heard (.*)$", log, re.M)
        assert heard, "no recognized text"
        words = lambda s: re.findall(r"[a-z']+", s.lower())
        q_words = words(QUESTION)
        h_words = set(words(heard.group(1)))
        overlap = sum(1 for w in q_words if w in h_words)
        print("overlap %d of %d question words" % (overlap, len(q_words)))
        assert 2 * overlap >= len(q_words), "recognized text too far from the question"

        assert values["phrases"] >= 2, "the reply should give several phrases"
        assert values["first_phrase_tts_at_ms"] < values["reply_end_at_ms"], \
            "the first phrase reached TTS only after the reply ended"

        data = open(out_wav, "rb").read()
        assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
        n_bytes = struct.unpack("<I", data[40:44])[0]
        assert n_bytes > 0 and n_bytes == len(data) - 44
        samples = struct.unpack("<%dh" % (n_bytes // 2), data[44:44 + n_bytes])
        assert any(abs(x) > 100 for x in samples), "the answer's audio is silent"
        assert values["output_samples"] == n_bytes // 2

        env_nodev = dict(env)
        env_nodev["PULSE_SERVER"] = "unix:" + os.path.join(tmp, "no-such-socket")
        r = subprocess.run([voice, "-m", model, "--in", q_wav, "--play", "-n", "4", "--fast"],
                           capture_output=True, text=True, timeout=120, env=env_nodev)
        print(r.stderr)
        assert r.returncode == 1, "--play without a sound device should fail"
        assert "no sound device" in r.stderr, "the error should say there is no sound device"
        assert "startup_ms" not in r.stderr, "the device should be checked before the model loads"
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
