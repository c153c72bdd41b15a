// The picture a <video> shows, as a PNG at the video's size (for the MSE players' snapshot()).

import { PlayerError } from "./errors.js";

export function snapshotVideo(video: HTMLVideoElement): Promise<Blob> {
  const { videoWidth: width, videoHeight: height } = video;
  if (width === 0 || height === 0 || video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA) {
    return Promise.reject(new DOMException("no picture to snapshot yet", "InvalidStateError"));
  }
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  if (ctx === null) return Promise.reject(new PlayerError("CC_ERR_MEDIA", "no 2d context for the snapshot"));
  ctx.drawImage(video, 0, 0, width, height);
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob === null ? reject(new DOMException("toBlob gave no image", "EncodingError")) : resolve(blob)), "image/png");
  });
}
