/* ipywidgets' controls call MathJax 2's MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]) to typeset
   widget labels; this site loads MathJax 3, which has no Hub. Map the call to MathJax 3's typesetPromise. */
(function () {
  var mj = window.MathJax;
  if (!mj || mj.Hub) { return; }
  mj.Hub = {
    Queue: function (command) {
      var element = command && command[2];
      if (window.MathJax.typesetPromise) {
        window.MathJax.typesetPromise(element && element.nodeType ? [element] : undefined);
      }
    }
  };
})();
