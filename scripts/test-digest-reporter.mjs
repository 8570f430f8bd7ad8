// A node:test reporter that writes one JSON line per finished test or suite, for the digest that
// scripts/run-tests.mjs prints at the end of a run (totals, and every skip and todo with its reason
// and file). It runs next to the TAP/spec reporter, with its own destination file.
export default async function* digestReporter(source) {
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { data } = event;
    yield `${JSON.stringify({
      result: event.type === 'test:pass' ? 'pass' : 'fail',
      name: data.name,
      nesting: data.nesting,
      file: data.file,
      line: data.line,
      suite: data.details?.type === 'suite',
      skip: data.skip ?? false,
      todo: data.todo ?? false,
    })}\n`;
  }
}
