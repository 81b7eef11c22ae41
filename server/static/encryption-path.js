// Home page: say how what the source sends will be encrypted
// (templates/_encryption_path.html) once this browser's WebCrypto is checked.
// The submit page does the same through upload.js.
import { browserEncrypts, showBrowserPath } from "./upload-ui.js";

browserEncrypts(document.querySelector("[data-newsroom-key]")).then((yes) => {
  if (yes) showBrowserPath();
});
