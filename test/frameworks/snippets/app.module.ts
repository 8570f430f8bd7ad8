/**
 * The Nest application behind the nestjs snippet (not shown in docs/frameworks.md: it is the user's).
 * Decorators are applied as functions because this repository compiles without
 * `experimentalDecorators`; `@Controller()`, `@Get()` and `@Module()` do the same.
 */
import { Controller, Get, Module, type OnApplicationShutdown } from '@nestjs/common';

export class HelloController {
  hello(): string {
    return 'hello';
  }
}
Controller()(HelloController);
Get()(
  HelloController.prototype,
  'hello',
  Object.getOwnPropertyDescriptor(HelloController.prototype, 'hello')!,
);

export class AppModule implements OnApplicationShutdown {
  onApplicationShutdown(): void {
    // The test reads this line: Nest's own shutdown ran, inside kubegrace's cleanup.
    process.stdout.write('nest shutdown hooks ran\n');
  }
}
Module({ controllers: [HelloController] })(AppModule);
