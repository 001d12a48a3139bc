// Portal: copy-to-clipboard buttons. Without JavaScript the buttons stay hidden and the text stays selectable.
// Every text it shows comes from the page (data attributes rendered by the template in the customer's language).
(function () {
  var status = document.getElementById("copy-status");
  function text(name, fallback) {
    return (status && status.getAttribute(name)) || fallback;
  }
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    if (!navigator.clipboard) { return; }
    button.hidden = false;
    var label = button.firstChild.nodeValue;
    button.addEventListener("click", function () {
      var target = document.getElementById(button.getAttribute("data-copy"));
      if (!target) { return; }
      navigator.clipboard.writeText((target.value || target.textContent).trim()).then(function () {
        button.firstChild.nodeValue = text("data-copied", "Copied");
        if (status) { status.textContent = text("data-copied-status", "Copied to the clipboard."); }
        setTimeout(function () { button.firstChild.nodeValue = label; }, 2000);
      }, function () {
        if (status) { status.textContent = text("data-copy-failed", "Copy failed; select the text and copy it."); }
      });
    });
  });
})();
