"""What a recording is: duration, streams, codecs, channels, sample rate, picture size.

Read with PyAV (``av``, the Python binding of FFmpeg's libraries, https://pyav.basswood-io.com/),
whose wheels carry their own FFmpeg: no ``ffprobe`` needs to be installed.
"""

from __future__ import annotations

from pathlib import Path

from echoes_lab.errors import DataError


def probe(path) -> dict:
    """Describe the audio or video file at ``path``.

    Returns
    -------
    dict
        ``path``, ``format`` (container), ``duration`` (seconds: the container's, else the
        longest stream's), ``audio`` (``codec``, ``channels``, ``sample_rate``, ``duration``)
        and ``video`` (``codec``, ``width``, ``height``, ``fps``, ``duration``) of the first
        stream of each kind, or None.

    Raises
    ------
    DataError
        The file is missing or FFmpeg cannot open it as audio or video.
    """
    import av

    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such file"
        raise DataError(msg)
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        msg = f"{path}: not an audio or video file FFmpeg can read ({exc})"
        raise DataError(msg) from None
    with container:
        def seconds(stream):
            if stream.duration is None or stream.time_base is None:
                return None
            return float(stream.duration * stream.time_base)

        audio = video = None
        if container.streams.audio:
            a = container.streams.audio[0]
            audio = {"codec": a.codec_context.name, "channels": a.codec_context.channels,
                     "sample_rate": a.codec_context.sample_rate, "duration": seconds(a)}
        if container.streams.video:
            v = container.streams.video[0]
            rate = v.average_rate or v.guessed_rate
            video = {"codec": v.codec_context.name, "width": v.codec_context.width,
                     "height": v.codec_context.height,
                     "fps": float(rate) if rate else None, "duration": seconds(v)}
        if audio is None and video is None:
            msg = f"{path}: has neither an audio nor a video stream"
            raise DataError(msg)
        if container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = max((s["duration"] or 0) for s in (audio, video) if s) or None
        return {"path": str(path), "format": container.format.name, "duration": duration,
                "audio": audio, "video": video}
