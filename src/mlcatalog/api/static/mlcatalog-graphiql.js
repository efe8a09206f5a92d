// Starts GraphiQL against the page's own address, which is the GraphQL endpoint.
// A file of its own rather than an inline script, so the page's CSP allows scripts from 'self' only.
(function () {
  "use strict";
  var endpoint = window.location.href.split(/[?#]/)[0];
  var socket = new URL(endpoint);
  socket.protocol = socket.protocol === "https:" ? "wss:" : "ws:";
  var fetcher = GraphiQL.createFetcher({
    url: endpoint,
    subscriptionUrl: socket.toString(),
  });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
    }),
  );
})();
