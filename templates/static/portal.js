// Portal: copy-to-clipboard buttons. Without JavaScript the buttons stay hidden and the text stays selectable.
(function () {
  var status = document.getElementById("copy-status");
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    if (!navigator.clipboard) { return; }
    button.hidden = false;
    var label = button.firstChild.nodeValue;
    button.addEventListener("click", function () {
      var target = document.getElementById(button.getAttribute("data-copy"));
      if (!target) { return; }
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        button.firstChild.nodeValue = "Copied";
        if (status) { status.textContent = "Copied to the clipboard."; }
        setTimeout(function () { button.firstChild.nodeValue = label; }, 2000);
      }, function () {
        if (status) { status.textContent = "Copy failed; select the text and copy it."; }
      });
    });
  });
})();
